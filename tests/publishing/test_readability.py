from publishing.readability import reading_grade, syllables


def test_short_texts_are_not_graded():
    assert reading_grade("We launch today.") is None


def test_plain_text_grades_lower_than_dense_text():
    plain = (
        "We launch the rocket at six. It will carry a small weather probe. "
        "You can watch it live on our site. The crew is ready and the sky is clear. "
        "Come and see it with us."
    )
    dense = (
        "Notwithstanding considerable meteorological uncertainty, the organisation anticipates "
        "commencing launch operations contemporaneously with the establishment of favourable "
        "atmospheric conditions, subsequently facilitating comprehensive observational "
        "capabilities for international collaborative institutions."
    )
    assert reading_grade(plain) < 6
    assert reading_grade(dense) > 15


def test_syllables_of_common_words():
    assert syllables("rocket") == 2
    assert syllables("the") == 1
    assert syllables("organisation") >= 4

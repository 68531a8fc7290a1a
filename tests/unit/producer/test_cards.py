import re

import pytest

from producer.cards import CardProtector, has_card_number, mask, redact
from schemas.fields import CARD_MASKED_PATTERN


def test_token_is_keyed_and_stable():
    a, b = CardProtector(b"k" * 32), CardProtector(b"j" * 32)
    token, masked = a.protect("2703186189652095")
    assert token == a.protect("2703186189652095")[0]
    assert token != b.protect("2703186189652095")[0]
    assert len(token) == 32 and "2703186189652095" not in token
    assert masked == "270318******2095"


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("30263540242", "*******0242"),  # 11 digits: the first 6 and last 4 would be all of it
        ("630423337322", "********7322"),
        ("3502088871723", "*********1723"),
        ("36078701356011", "**********6011"),
        ("180036456789917", "***********9917"),
        ("2703186189652095", "270318******2095"),
        ("40236593651534231", "402365*******4231"),
        ("4" * 19, "444444" + "*" * 9 + "4444"),
    ],
)
def test_mask_hides_at_least_six_digits_and_shows_at_most_first_six_and_last_four(pan, masked):
    assert mask(pan) == masked and len(masked) == len(pan)
    assert re.fullmatch(CARD_MASKED_PATTERN, masked)
    shown = [i for i, c in enumerate(masked) if c != "*"]
    assert len(pan) - len(shown) >= 6
    assert all(i < 6 or i >= len(pan) - 4 for i in shown)


def test_the_schema_refuses_masks_that_show_too_much():
    for revealing in ("630423**7322", "30263540242", "302635*0242", "4111111111111111", "41111*****1111"):
        assert not re.fullmatch(CARD_MASKED_PATTERN, revealing), revealing


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        CardProtector(b"short")


def test_redact_masks_every_pan_in_free_text():
    out = redact("card 2703186189652095 at merchant, zip 28654")
    assert "2703186189652095" not in out and "270318******2095" in out and "zip 28654" in out
    assert redact("unix time 1325376018") == "unix time 1325376018"  # 10 digits: not a card number


@pytest.mark.parametrize(
    "written",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111.1111.1111.1111",
        "4111_1111_1111_1111",
        "4111\t1111\t1111\t1111",
        "4111  1111  1111  1111",
        "4111 1111\n1111 1111",
        "4111 1111\r\n1111 1111",
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
        "4111/1111/1111/1111",
        "4111\u00a01111\u200b1111\u20121111",  # no-break space, zero-width space, figure dash
    ],
)
def test_redact_masks_card_numbers_whatever_separates_their_digits(written):
    out = redact(f"card {written} used")
    assert out == "card 411111******1111 used"
    assert has_card_number(written)


def test_a_run_of_more_than_19_digits_is_hidden_entirely():
    run = "12" + "4111111111111111" + "99"
    assert redact(f"x{run}y") == "x" + "*" * 20 + "y"


def test_letters_end_a_run_and_short_numbers_stay():
    text = "zip 28654 lat 36.0788 amt 12.50 line 2019-01-01"
    assert redact(text) == text and not has_card_number(text)


def test_the_token_cache_holds_no_card_number_and_is_bounded():
    pans = [f"4{n:015d}" for n in range(10)]
    protector, uncached = CardProtector(b"k" * 32, cache_size=3), CardProtector(b"k" * 32)
    first = [protector.protect(p) for p in pans + pans[:2]]
    assert first == [uncached.protect(p) for p in pans + pans[:2]]  # evicted cards get the same token again
    cache = protector._cache
    assert len(cache) == 3
    assert all(isinstance(slot, bytes) and len(slot) == 16 for slot in cache)
    held = repr(cache).encode() + b"".join(cache)
    assert not any(p.encode() in held or p[-10:].encode() in held for p in pans)  # only the masked form


def test_a_column_of_card_numbers_is_protected_card_by_card():
    import pyarrow as pa

    protector = CardProtector(b"k" * 32)
    pans = ["2703186189652095", "4" * 16, "2703186189652095", "630423337322"]
    for column in (pa.array(pans), pa.chunked_array([pans[:1], pans[1:]])):
        tokens, masked = protector.protect_many(column)
        assert list(zip(tokens.to_pylist(), masked.to_pylist(), strict=True)) == [protector.protect(p) for p in pans]

import pytest

from producer.cards import CardProtector, mask, redact


def test_token_is_keyed_and_stable():
    a, b = CardProtector(b"k" * 32), CardProtector(b"j" * 32)
    token, masked = a.protect("2703186189652095")
    assert token == a.protect("2703186189652095")[0]
    assert token != b.protect("2703186189652095")[0]
    assert len(token) == 32 and "2703186189652095" not in token
    assert masked == "270318******2095"


def test_mask_keeps_first_six_and_last_four_for_every_length():
    assert mask("630423337322") == "630423**7322"
    assert mask("4" * 19) == "444444" + "*" * 9 + "4444"


def test_redact_masks_every_pan_in_free_text():
    text = '{"cc_num": "2703186189652095", "zip": "28654", "unix_time": "1325376018"}'
    out = redact(text)
    assert "2703186189652095" not in out and "270318******2095" in out
    assert "28654" in out and "1325376018" in out  # 10 digits: not a card number


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        CardProtector(b"short")


def test_redact_masks_card_numbers_written_in_groups():
    out = redact("card 4111 1111 1111 1111 or 4111-1111-1111-1111, zip 28654, at 2019-01-01 00:00:18")
    assert "1111 1111" not in out and "1111-1111" not in out
    assert out.count("411111******1111") == 2 and "2019-01-01 00:00:18" in out

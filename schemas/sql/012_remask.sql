-- Masks that hide (issue 9): a mask shows at most the first 6 and last 4 digits and
-- always hides at least 6, so from 16 digits it keeps the first 6 and last 4, below 16
-- the last 4 only. Masks stored before kept the first 6 and last 4 whatever the length
-- (an 11-digit number in clear, a 12-digit one hiding 2 digits). The card number is not
-- stored, so the new mask is computed from the old one: same length, last 4 digits,
-- stars for the rest. Any other stored form that does not comply is hidden entirely.
UPDATE transactions
SET card_masked = CASE
    WHEN card_masked ~ '^[0-9]{6}\*{1,5}[0-9]{4}$'
        THEN repeat('*', length(card_masked) - 4) || right(card_masked, 4)
    ELSE repeat('*', length(card_masked))
END
WHERE card_masked !~ '^([0-9]{6}\*{6,9}|\*{7,11})[0-9]{4}$';

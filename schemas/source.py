"""The input files: the Kaggle "Credit Card Transactions" CSV layouts."""

from __future__ import annotations

# Both Kaggle layouts share these; the priyamchoksi file adds ``merch_zipcode``.
REQUIRED_COLUMNS = (
    "trans_date_trans_time", "cc_num", "merchant", "category", "amt", "first", "last",
    "gender", "street", "city", "state", "zip", "lat", "long", "city_pop", "job", "dob",
    "trans_num", "unix_time", "merch_lat", "merch_long", "is_fraud",
)  # fmt: skip
OPTIONAL_COLUMNS = ("merch_zipcode",)
# The unnamed index column the Kaggle files start with, as spreadsheets and pandas name it.
INDEX_COLUMN_NAMES = ("", "Unnamed: 0")

CATEGORIES = (
    "entertainment", "food_dining", "gas_transport", "grocery_net", "grocery_pos",
    "health_fitness", "home", "kids_pets", "misc_net", "misc_pos", "personal_care",
    "shopping_net", "shopping_pos", "travel",
)  # fmt: skip

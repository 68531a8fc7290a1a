"""The simulation's behaviour: profiles, categories, amounts, calendar weights, fraud.

Numbers carried over from the Sparkov simulator that produced the Kaggle data, or
measured on the real slices; see the package docstring.
"""

from __future__ import annotations

from schemas.source import CATEGORIES

# The simulator's category order. It matters: one uniform draw selects the category by
# inverse CDF in this order *and* AM/PM by comparison with the AM share.
CATEGORY_ORDER = (
    "gas_transport", "grocery_net", "grocery_pos", "misc_net", "misc_pos", "shopping_net",
    "shopping_pos", "entertainment", "food_dining", "health_fitness", "home", "kids_pets",
    "personal_care", "travel",
)  # fmt: skip
assert sorted(CATEGORY_ORDER) == sorted(CATEGORIES)
N_CAT = len(CATEGORY_ORDER)
CAT = {name: i for i, name in enumerate(CATEGORY_ORDER)}

BANDS = ("young_adults", "adults_2550", "adults_50up")  # age < 25, 25-50, 50+
GENDERS = ("F", "M")
AREAS = ("rural", "urban")
URBAN_MIN_POP = 2500

# -- legitimate behaviour, per age band (tuples follow CATEGORY_ORDER) ------------------
CATEGORY_WEIGHTS = {
    "young_adults": (140, 55, 65, 55, 65, 85, 105, 80, 85, 75, 70, 75, 70, 40),
    "adults_2550": (95, 45, 110, 50, 62, 78, 90, 70, 75, 68, 118, 88, 75, 28),
    "adults_50up": (120, 15, 95, 55, 55, 68, 82, 75, 70, 72, 112, 115, 98, 40),
}
MALE_FACTORS = {"gas_transport": 1.1, "entertainment": 1.1, "travel": 1.15,
                 "personal_care": 0.8, "kids_pets": 0.9}  # fmt: skip
RURAL_FACTORS = {"gas_transport": 1.15, "shopping_net": 1.1, "misc_net": 1.1,
                  "travel": 0.85, "food_dining": 0.9}  # fmt: skip
# (mean, standard deviation) of the Gamma amount per category.
AMOUNTS = {
    "young_adults": ((60, 15), (35, 20), (65, 20), (60, 100), (45, 150), (50, 300), (50, 300),
                     (70, 40), (20, 50), (45, 50), (45, 50), (40, 40), (35, 50), (50, 600)),
    "adults_2550": ((70, 15), (55, 20), (105, 25), (55, 150), (70, 120), (60, 300), (60, 300),
                    (70, 60), (55, 45), (60, 45), (60, 50), (55, 45), (45, 45), (60, 600)),
    "adults_50up": ((62, 15), (90, 20), (115, 25), (55, 150), (60, 200), (80, 200), (45, 200),
                    (50, 60), (55, 40), (45, 45), (55, 50), (60, 45), (45, 50), (60, 600)),
}  # fmt: skip
# Transactions per day: each customer draws an integer rate once from this range. A rate
# of 0 is possible, as in the simulator: such a card shows up only with its fraud (the
# real train file has 983 cards for 1,000 customers, and cards with frauds only).
TX_PER_DAY = {
    ("young_adults", "F"): (0, 5), ("young_adults", "M"): (0, 5),
    ("adults_2550", "F"): (1, 5), ("adults_2550", "M"): (1, 4),
    ("adults_50up", "F"): (0, 4), ("adults_50up", "M"): (1, 3),
}  # fmt: skip
# Share of a profile's transactions before noon, by (gender, area).
AM_SHARE = {
    "young_adults": {("F", "rural"): 0.26, ("F", "urban"): 0.24,
                     ("M", "rural"): 0.34, ("M", "urban"): 0.28},
    "adults_2550": {("F", "rural"): 0.27, ("F", "urban"): 0.29,
                    ("M", "rural"): 0.46, ("M", "urban"): 0.40},
    "adults_50up": {("F", "rural"): 0.50, ("F", "urban"): 0.58,
                    ("M", "rural"): 0.48, ("M", "urban"): 0.60},
}  # fmt: skip
# Monday .. Sunday.
WEEKDAY_WEIGHTS = {
    "young_adults": (70, 80, 90, 100, 130, 150, 140),
    "adults_2550": (80, 90, 100, 100, 125, 150, 150),
    "adults_50up": (80, 90, 100, 100, 130, 160, 160),
}
# (first month-day, last month-day, weight) on the simulator's calendar; 1.0 elsewhere.
SEASONS = (((11, 30), (12, 31), 2.0), ((1, 1), (2, 28), 0.75), ((5, 24), (9, 1), 1.25))

# -- fraud behaviour ---------------------------------------------------------------------
FRAUD_SHARE_OF_CUSTOMERS = 99 / 101  # the simulator's randint(0, 100) < 99
SIMULATION_RUN_DAYS = 731  # 2019-01-01 .. 2020-12-31: fraudTrain + fraudTest
FRAUD_LAST_START = 7  # an episode starts on day 1 .. run_days - 8 of the run
FRAUD_COUNT = {"young_adults": (8, 16), "adults_2550": (2, 16), "adults_50up": (2, 16)}
FRAUD_AM_SHARE = 0.30
FRAUD_NIGHT_FORCED = 0.80  # else the hour is uniform within AM / PM like legit ones
FRAUD_CATEGORY_WEIGHTS = (82, 18, 232, 122, 33, 228, 112, 31, 20, 18, 26, 32, 29, 15)
FRAUD_AMOUNTS = {
    "young_adults": ((10, 2), (12, 3), (300, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                     (500, 50), (120, 12), (20, 3), (250, 25), (20, 3), (22, 3), (9, 2)),
    "adults_2550": ((10, 2), (12, 3), (325, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                    (550, 50), (120, 12), (20, 3), (300, 30), (20, 3), (22, 3), (9, 2)),
    "adults_50up": ((10, 2), (12, 3), (350, 20), (800, 80), (15, 4), (1000, 100), (800, 80),
                    (600, 60), (120, 12), (20, 3), (400, 40), (20, 3), (22, 3), (9, 2)),
}  # fmt: skip

# -- customers and merchants -------------------------------------------------------------
FEMALE_SHARE = 0.508
# Cardholder ages (years at the window start) in the real slices: bin edges and counts.
AGE_EDGES = (14, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95)
AGE_COUNTS = (5, 22, 52, 83, 102, 73, 89, 94, 82, 76, 66, 43, 32, 28, 20, 18, 13)
MERCHANTS_PER_CATEGORY = 50
MERCHANT_POOL_SEED = 693  # the pool is fixed, whatever the run's seed
MERCHANT_RADIUS_DEG = 1.0
# A merchant gets the ZIP area of the nearest known place closer than this (degrees,
# longitude scaled by cos(latitude)); farther away merch_zipcode is empty (~16% as real).
MERCH_ZIP_MAX_DEG = 0.58

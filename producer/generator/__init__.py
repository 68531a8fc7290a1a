"""Synthetic card transactions in the Kaggle ``credit_card_transactions.csv`` layout.

The generator re-implements the behaviour of the Sparkov simulation that produced the
Kaggle data (see ``docs/dataset-facts.md``), vectorised with numpy so that the default
run (1,000 customers, 2019-01-01 .. 2020-06-21, ~1.3 M rows) takes well under a minute
and a bounded amount of memory: rows are generated and written one calendar month at a
time, for all customers, and sorted within the month.

Behaviour carried over from the simulation, including its quirks:

* Twelve profiles (age band x gender x urban/rural, city population cut at 2,500) fix
  the transactions per day (a per-customer integer drawn once from a uniform range;
  0 for a few customers, whose card then shows up with its fraud only),
  category weights, per-category Gamma amounts (mean, spread; amounts under $1 are
  replaced by a uniform $1-10) and the AM share.
* One uniform draw picks both the category (inverse CDF over the categories in the
  simulator's fixed order) and AM/PM (``u < am_share``).  That is why, in the real
  data, ``gas_transport`` and ``grocery_net`` happen only before noon and ``home`` or
  ``travel`` only after it.  The hour is uniform within AM or PM.
* Day weights (day of week, 30 Nov-31 Dec x2.0, 1 Jan-28 Feb x0.75, 24 May-1 Sep x1.25)
  apply on the simulator's own calendar, which is the ``unix_time`` clock: the published
  dates are the simulated ones shifted forward by seven years.  2019-01-01 was simulated
  as Sunday 2012-01-01, so it is a busy day, as in the real file.
* ~98% of customers (99 of 101) get one fraud episode starting on a uniform day of the
  simulator's two-year run (the two Kaggle files are slices of one 731-day run), so a
  shorter window sees proportionally fewer episodes: the fraud rate (~0.5%) does not
  depend on the window length.  An episode spans its start day and the next, holds 2-16
  frauds (8-16 for customers under 25), and removes the customer's legitimate
  transactions on the days it touches.  80% of frauds are forced into 22:00-03:59.
* Merchants: a fixed pool of 50 faker company names per category (700 entries,
  ~690 distinct names; the real file has 693), picked uniformly within the category;
  the merchant location is uniform within +-1 degree of the cardholder's home.

Simplifications, by design: homes are drawn from a table (``places.csv``) of the 888 distinct
home places of the real slices (which already reflects the simulator's
population-weighted draw), and ``merch_zipcode`` is derived from that table (empty
where no known place is near the merchant) rather than from a ZIP-code database.

The header is the real file's, whose index column pandas named ``Unnamed: 0`` (the
kartik2112 files leave it empty).  Numbers are written as the real file writes them:
shortest float text (``45.0``, ``-112.262``), ``cc_num`` as an integer (11-19 digits),
``merch_zipcode`` as a float (``28705.0``) or empty.

Output is deterministic: the same arguments give a byte-identical file with the same
numpy and faker versions.

Modules: ``parameters`` (the simulation's numbers), ``profiles``, ``clock`` (simulated
calendar, ``unix_time``), ``places`` (home places, merchant ZIP areas), ``people``
(cardholders, merchants), ``months`` (fraud episodes, one month of transactions),
``writer`` (:func:`generate`), ``describe``.
"""

from producer.generator.clock import unix_time
from producer.generator.describe import describe
from producer.generator.writer import COLUMNS, GenerationSummary, generate

__all__ = ["COLUMNS", "GenerationSummary", "describe", "generate", "unix_time"]

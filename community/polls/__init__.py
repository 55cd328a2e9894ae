"""Reader polls: the poll (model), validating a ballot (ballots), counting it (counting),
explaining the count (method), charts (charts), CSV (export), and their SQL (store).

The names below are the package's face for the web and the command: `from community
import polls` then `polls.count_irv(...)`. Everything but `store` is pure: no database,
no clock, no request (see model.py for the rules every part keeps).
"""

from .ballots import validate_ballot
from .charts import bar_chart_svg, burst_threshold, votes_over_time_svg
from .counting import TIE_BREAK_RULE, IRVResult, OptionCount, Result, Round, count_irv, count_plurality, percent_text
from .export import results_csv
from .method import methodology, visible_to
from .model import (
                    IGNORED_FIELDS,
                    INTEGRITIES,
                    KINDS,
                    REJECTION_REASONS,
                    VISIBILITIES,
                    Ballot,
                    BallotError,
                    Option,
                    Poll,
                    is_closed,
                    is_open,
)

__all__ = [
    "KINDS", "VISIBILITIES", "INTEGRITIES", "REJECTION_REASONS", "IGNORED_FIELDS", "TIE_BREAK_RULE",
    "Option", "Poll", "Ballot", "BallotError", "OptionCount", "Result", "Round", "IRVResult",
    "validate_ballot", "is_open", "is_closed", "count_plurality", "count_irv", "percent_text",
    "methodology", "visible_to", "bar_chart_svg", "votes_over_time_svg", "burst_threshold",
    "results_csv",
]

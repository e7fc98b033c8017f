"""Every script in examples/ runs to completion in a fresh working directory and tells its story."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Lines (or parts of lines) each example must print; an example not listed here must still exit 0.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "qualified Grace Hopper: now a prospect, belonging to target Compiler Works Ltd",
        "== Grace Hopper (person, now prospect) ==",
        "Engaged         by website           stage: suspect -> lead; channel: web_form",
        "Qualified       by marketing:eva     stage: lead -> prospect",
        "Linked          by marketing:eva     organization_id: Compiler Works Ltd",
        "Assigned        by sales:head        owner: rep:marco",
        "== Compiler Works Ltd (organization, now customer) ==",
        "stage: target -> customer; reference: order SO-1042",
        "== Alan Turing (person, now disqualified) ==",
        "disqualification_reason: student project, no budget",
        "counts now: 3 parties",
        "  by stage: customer=1, disqualified=1, prospect=1",
        "  by kind:  organization=1, person=2",
        "  by owner: rep:marco=2; unassigned=1",
        "counts as of 2025-03-08 09:00: 2 parties",
        "  by stage: lead=2",
        "Grace as of 2025-03-08 09:00: stage=lead, owner=None, channel=web_form, version=2",
        "Grace now: stage=prospect, owner=rep:marco, version=6",
        "customers: Compiler Works Ltd",
    ],
    "clean_data.py": [
        "registered Mario Rossi: email Mario.Rossi@acme.it, phone +390212345678",
        "refused: vat_number has a wrong checksum",
        "refused: email mario.rossi@acme.it already belongs to Mario Rossi",
        "near match for the new party: Mario Rossi (score",
        "import check: row 0 ~ row 2",
        "import check: Mario Rossi ~ row 1",
        "merge plan: emails from both",
        "after merge: ['Mario.Rossi@acme.it', 'mrossi@gmail.com']; parties listed: 1",
        "after unmerge: Mario Rossi ['Mario.Rossi@acme.it'], Mario Rosi ['mrossi@gmail.com']; "
        "parties listed: 2",
        "history of the second Mario: Registered, MergedInto, Unmerged",
    ],
    "embedding.py": [
        "[screen via subscribe] #1 Acme Corp: Registered v1 by user:anna",
        "[form] someone changed this party after you opened it (you had v2, it is now v3)",
        "[form] owner: String should have at least 1 character",
        "[form] saved: owner=rep:marta, v4",
        "[worker] qualified Acme Corp -> target, with prospect Wile E.",
        "[screen via poll] #5 Acme Corp: Qualified v5 by worker:scoring",
        "[screen] 3 new changes from other processes",
        "[screen] nothing new: 0 changes",
        "[schema] PartyView: ",
        "[screen via poll] #8 Acme Corp: SetAside v6 by user:anna",
        "[screen] 1 new change",
    ],
    "sales_year.py": [
        "registered and qualified 60 parties in late 2024: 40 prospects, 20 targets",
        "customers: 11 (7 persons, 4 organizations)",
        "open pipeline (EUR):   2 deals, value    33,140, weighted     6,628",
        "average sales cycle: 98.5 days",
        "won (EUR):  11 deals,   217,403; lost:  77 deals, 1,986,166",
        "    no budget        16 deals,   387,104",
        "2025-05     5    124,797          0     0          0          0   +124,797       -",
        "2025-11     5     57,554     42,861     2     40,204     40,204    +17,350    43.2",
        "accuracy: weighted forecast 480,172, won 217,403, bias +262,769, mean absolute error 29,383, "
        "WAPE 162.2%",
        "proposal           60   66.7    16    8     8     0   50.0        9            11.1",
        "2025-Q4 (EUR): forecast 10 deals, weighted 63,612, commit 0; won 6 for 125,273 (78,008 forecast); "
        "error -61,661 (-49.2%)",
        "proposal (50.0% won of 16 closed, against 60%)",
    ],
    "sales_team.py": [
        "the book on 1 March 2025: 8 parties, 4 customers",
        "giulia's agenda for Wednesday 12 March 2025, as it stood at 08:00: 6 open tasks",
        "Mon 10 Mar (deadline)  documentation Quote for the second production line",
        "(the call with Ponte Systems was due 10 March 09:30; giulia moved it on 07 March to 14 March 09:30)",
        "    giulia  1 / 1 / 2 / 2, 235 min",
        "  giulia  completed 7, 6 on time, 1 late (3 days on average); 420 min spent; cancelled 0",
        "  marco   completed 2, 2 on time, 0 late; 80 min spent; cancelled 1",
        "    21 Mar 09:00  left     Aurora Textiles    Party.Unsubscribed",
        "    20 Mar 10:30  left     Olivo Labs         Party.FieldsUpdated",
        "    28 Mar 10:00  entered  Lago Foods         Opportunity.Opened",
        "Northern pipeline as of 10 March 12:00: Vento Design (lead), Ponte Systems (lead)",
        "   1 Ferro Engineering   63.2     83.3      63.2       15.4   75.0  2025-02-12       3",
        "Ponte Systems under BANT v1: review, score 0.50; failed: can decide, has a need, "
        "buys within six months",
        "qualify Vento Design (policy required): now a target",
        "qualify Ponte Systems (policy required): refused, review (score 0.50)",
        "model v1 on channel, industry: 36 won and 248 lost deals (prior 12.7%)",
        "  Officina Bianchi    34.6%",
        "    channel = referral: up, likelihood ratio 2.888 (10 won, 23 lost)",
        "  2024-Q3      114   184        15  0.628    8.2   21.1  2.58",
        "  overall            563        44  0.650    7.8   13.8  1.76",
    ],
    "hygiene.py": [
        "loaded 3,000 parties and 33,204 events, 01 Jan 2024 to 01 Jan 2026",
        "  lead      average stay   89.52 days (1098 stays, measured)",
        "  stale 1445, inactive 589, bounced addresses 263 (263 parties), unsubscribed 198, incomplete 188, "
        "set aside 0",
        "  to complete for giulia: 23 records",
        "  values breaking the current field rules: 36; duplicate pairs: 40",
        "  2025-Q1         2146    922       225      134            72         139",
        "  1445 moved to the newsletter list, 0 addresses suppressed, 48 completion tasks",
        "  stale 1445 -> 0, set aside 0 -> 1445, incomplete 188 -> 91",
        "  2024-Q2         371     151       78        5           14       6  82,500 EUR",
        "  put back ",
    ],
    "campaigns.py": [
        "  newsletter       522 recipients",
        "  telemarketing    275 left out: no_consent",
        "Newsletter wave 1: 522 sent; mail tool reports: 860 received, 783 stored, 77 repeats skipped "
        "(sent again: 0 stored)",
        "  opened (unique / total)        135 / 230",
        "  open rate                      27.6 %",
        "  responses (redemption)         71 (11.6 % of the audience)",
        "  last touch   opportunities 18, sales 8 (1.3 % of the audience), won 25600.00 EUR, ROI 495.4 %",
    ],
}


def example_scripts() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def run_example(script: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as a user would, from ``workdir``, with temporary files kept under it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMCORE_")}
    env.update(TMPDIR=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(
        [sys.executable, str(script)], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_documented_examples_are_all_there() -> None:
    names = {p.name for p in example_scripts()}
    assert set(EXPECTED) <= names


@pytest.mark.parametrize("script", example_scripts(), ids=lambda p: p.name)
def test_an_example_runs_to_completion_and_prints_its_story(script: Path, tmp_path: Path) -> None:
    result = run_example(script, tmp_path)
    assert result.returncode == 0, result.stderr
    for expected in EXPECTED.get(script.name, []):
        assert expected in result.stdout, f"{script.name} did not print {expected!r}:\n{result.stdout}"


@pytest.mark.parametrize("script", example_scripts(), ids=lambda p: p.name)
def test_an_example_leaves_no_files_behind(script: Path, tmp_path: Path) -> None:
    result = run_example(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []

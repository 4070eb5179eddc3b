"""The decision policy bundle: a versioned YAML file, validated, and named by its canonical sha256.

The bundle is what DF decides with; its digest (sha256 of the canonical JSON of its parsed
content, so comments and layout do not count) is pinned per run. Two checks guard it:

- next to each bundle file lives `<file>.sha256`, the digest the bundle was reviewed with; a file
  whose content no longer matches it was edited without review and is refused (`POLICY_TAMPERED`);
- `decide` is given the run's pinned digest and refuses a bundle with another one (`POLICY_DRIFT`).

The signals a rule may name are listed here (`SIGNALS`): the policy language, which DF computes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runtime.contracts.canonical import canonical_digest
from runtime.contracts.schemas import compiled_validator
from runtime.errors import PermanentError

POLICY_DIR = Path(__file__).resolve().parent / "policy"
DEFAULT_POLICY = POLICY_DIR / "fraud_policy_v1.yaml"
SCHEMA = "decision/fraud_policy.schema.json"
OUTCOMES = ("APPROVE", "STEP_UP", "REVIEW", "DECLINE")  # in rising severity
POSTURES = ("GREEN", "AMBER", "RED")

#: Every signal a rule may name, with what it means. DF computes exactly these (None when unavailable).
SIGNALS: dict[str, str] = {
    "event.amount": "the event's amount (major units)",
    "event.is_p2p": "p2p channel or transfer event type",
    "event.is_round": "amount >= 100 and a whole multiple of 50",
    "card.count_10m": "the card's payments in the 10 minutes before the event (OFP)",
    "card.count_1h": "the card's payments in the hour before the event (OFP)",
    "card.amount_mean_10m": "mean amount of the card's payments in the 10 minutes before (OFP; None when none)",
    "card.distinct_merchants_1h": "distinct merchants the card paid in the hour before (OFP)",
    "card.distinct_merchants_10m": "distinct merchants the card paid in the 10 minutes before (OFP)",
    "card.first_seen_device": "the event's device is new for the card within 24 h (OFP)",
    "card.first_seen_merchant": "the event's merchant is new for the card within 24 h (OFP)",
    "customer.amount_to_baseline_ratio": "amount / the customer's mean spend over 24 h (OFP; None without history)",
    "customer.baseline_count_24h": "the customer's payments in the 24 h before (OFP)",
    "customer.count_1h": "the customer's payments in the hour before (OFP)",
    "customer.other_devices": "other devices the customer used before this event (IEG)",
    "device.age_seconds": "seconds since the device was first seen (IEG; 0 when never before)",
    "device.other_customers": "other customers seen on the device before this event (IEG)",
    "device.other_cards": "other cards used on the device before this event (IEG)",
    "collector.senders": "other accounts that sent p2p transfers to the payee before this event (IEG; 0 when not p2p)",
    "context.ip_country_differs": "the session's ip country differs from the merchant's country (CSFB join frame)",
    "context.join_status": "READY / LATE_JOIN / MISSING_CONTEXT (CSFB)",
}


class PolicyInvalid(PermanentError):
    """The bundle file is unreadable or breaks schemas/decision/fraud_policy.schema.json."""

    code = "POLICY_INVALID"
    next_step = "fix the policy file so it meets schemas/decision/fraud_policy.schema.json, then re-pin it"


class PolicyTampered(PermanentError):
    """The bundle's content no longer matches the digest recorded next to it."""

    code = "POLICY_TAMPERED"
    next_step = ("restore the reviewed policy file from git; a deliberate change needs a new version and a re-pin "
                 "(`python -m runtime.decision.bundle --pin <file>`)")


class PolicyDrift(PermanentError):
    """DF was asked to decide with a bundle whose digest is not the one pinned for the run."""

    code = "POLICY_DRIFT"
    next_step = "deploy the bundle pinned in the run's run.json (policy digest), or start a new run with the new bundle"


@dataclass(frozen=True)
class Condition:
    """One test of a rule: signal op value."""

    signal: str
    op: str
    value: float | bool | str


@dataclass(frozen=True)
class Rule:
    """A named rule: when all conditions hold, its weight adds and its reason code fires."""

    rule_id: str
    reason: str
    weight: float
    when: tuple[Condition, ...]


@dataclass(frozen=True)
class PostureRule:
    """What one posture changes: the outcome floor (plain and degraded) and the mark it leaves."""

    min_outcome: str
    degraded_min_outcome: str
    mark: str | None


@dataclass(frozen=True)
class Policy:
    """A loaded, validated bundle and its digest."""

    policy_id: str
    version: int
    digest: str
    thresholds: dict[str, float]
    rules: tuple[Rule, ...]
    degrade_min_outcome: str
    postures: dict[str, PostureRule]
    actions: dict[str, tuple[str, ...]]
    document: dict[str, Any]

    def ref(self) -> dict[str, Any]:
        """The policy as a decision record names it."""
        return {"policy_id": self.policy_id, "version": self.version, "digest": self.digest}


def policy_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a parsed bundle (comments and layout do not count)."""
    return canonical_digest(document)


def pin_path(path: Path) -> Path:
    """Where the reviewed digest of a bundle file is kept."""
    return path.with_name(path.name + ".sha256")


def parse_policy(document: Any) -> Policy:
    """Validate a parsed bundle and build the Policy (PolicyInvalid on any problem)."""
    if not isinstance(document, dict):
        raise PolicyInvalid(f"a policy bundle is a mapping, got {type(document).__name__}")
    errors = sorted(compiled_validator(SCHEMA).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        raise PolicyInvalid(f"policy breaks its schema at {where}: {errors[0].message} ({len(errors)} problem(s))")
    thresholds = {k: float(v) for k, v in document["thresholds"].items()}
    if not thresholds["STEP_UP"] < thresholds["REVIEW"] < thresholds["DECLINE"]:
        raise PolicyInvalid(f"thresholds must rise STEP_UP < REVIEW < DECLINE, got {thresholds}")
    rules = []
    seen: set[str] = set()
    for raw in document["rules"]:
        if raw["id"] in seen:
            raise PolicyInvalid(f"rule id {raw['id']} appears twice")
        seen.add(raw["id"])
        unknown = [c["signal"] for c in raw["when"] if c["signal"] not in SIGNALS]
        if unknown:
            raise PolicyInvalid(f"rule {raw['id']} names unknown signal(s) {unknown}; known: {sorted(SIGNALS)}")
        rules.append(Rule(raw["id"], raw["reason"], float(raw["weight"]),
                          tuple(Condition(c["signal"], c["op"], c["value"]) for c in raw["when"])))
    postures = {name: PostureRule(p["min_outcome"], p["degraded_min_outcome"], p["mark"]) for name, p in document["postures"].items()}
    if postures["RED"].min_outcome == "APPROVE":
        raise PolicyInvalid("posture RED must not allow APPROVE (min_outcome must be STEP_UP or stricter)")
    return Policy(
        policy_id=document["policy_id"], version=int(document["version"]), digest=policy_digest(document),
        thresholds=thresholds, rules=tuple(rules), degrade_min_outcome=document["degrade"]["min_outcome"],
        postures=postures, actions={k: tuple(v) for k, v in document["actions"].items()}, document=document,
    )


def load_policy(path: Path = DEFAULT_POLICY, *, check_pin: bool = True) -> Policy:
    """Read, validate and digest a bundle file; refuse it when it no longer matches its recorded digest.

    `check_pin=False` is for a candidate bundle under review (a backtest), never for live DF.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyInvalid(f"policy file {path} is unreadable: {e}") from e
    except yaml.YAMLError as e:
        raise PolicyInvalid(f"policy file {path} is not valid YAML: {e}") from e
    policy = parse_policy(document)
    if check_pin:
        pin = pin_path(path)
        try:
            recorded = pin.read_text(encoding="utf-8").split()[0]
        except (OSError, IndexError) as e:
            raise PolicyTampered(f"policy file {path} has no recorded digest ({pin} missing or empty)") from e
        if recorded != policy.digest:
            raise PolicyTampered(f"policy file {path} has digest {policy.digest}, but {pin.name} records {recorded}: "
                                 "the file was changed after review")
    return policy


def require_pinned(policy: Policy, pinned_digest: str) -> None:
    """Raise PolicyDrift unless `policy` is the bundle pinned for the run."""
    if policy.digest != pinned_digest:
        raise PolicyDrift(f"policy {policy.policy_id} v{policy.version} has digest {policy.digest}; the run pinned {pinned_digest}")


def write_pin(path: Path) -> str:
    """Record the digest of the bundle at `path` next to it (after review); returns the digest."""
    policy = load_policy(path, check_pin=False)
    pin_path(path).write_text(f"{policy.digest}  {path.name}\n", encoding="utf-8")
    return policy.digest


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.decision.bundle [--pin] <file>`: print (and with --pin, record) a bundle's digest."""
    args = list(sys.argv[1:] if argv is None else argv)
    pin = "--pin" in args
    paths = [Path(a) for a in args if a != "--pin"] or [DEFAULT_POLICY]
    for path in paths:
        digest = write_pin(path) if pin else load_policy(path, check_pin=False).digest
        print(f"{digest}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

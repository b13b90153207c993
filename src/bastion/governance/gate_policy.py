"""The release policy: approvals per risk tier, and the gate's rules in CEL.

A project's release policy is one YAML document, versioned (every ``set`` is a
new version; the previous one stays active when a document is refused)::

    approvals:
      required: {minimal: 1, limited: 1, high: 2}   # "unacceptable" is never approved
      valid_days: 90                                # an approval expires after this
    waivers:
      max_days: 30                                  # longest waiver an admin may grant
    thresholds:
      min_accuracy: 0.7
      max_fairness_gap: 0.2
      max_attack_success_rate: 0.6
    rules:
      - name: signature
        description: signed by the project's key, trusted signer
        expr: facts.signature.valid

Each rule is a CEL expression (the language of Kubernetes admission policies,
evaluated by ``cel-python``) over two variables: ``facts`` (:data:`FACTS`, what
Bastion computed from signed evidence for the model version) and ``thresholds``
(the document's numbers, each checked against :data:`THRESHOLDS`).  A document
is refused, with its line and the reason, when it is not YAML, has an unknown
key, a rule does not parse, names a fact that does not exist, does not yield a
boolean, or a number is out of range.

Example::

    policy = parse_policy(Path("release.yaml").read_text())
    ok = policy.rules[0].evaluate(facts, policy.thresholds)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.adapter
import lark
import yaml
from celpy.celparser import CELParseError

from bastion.core.canonical import JSON
from bastion.governance.errors import ReleasePolicyInvalid

BOOL, INT, DOUBLE, STRING, STRINGS = "bool", "int", "double", "string", "list<string>"
Schema = Mapping[str, "str | Schema"]

#: every fact a rule may read, by group, with its CEL type (docs/governance.md lists them)
FACTS: Schema = {
    "model": {"name": STRING, "version": INT, "stage": STRING, "root_digest": STRING},
    "signature": {"valid": BOOL, "signer": STRING, "key_id": STRING},
    "scan": {"clean": BOOL, "verdict": STRING, "findings": INT},
    "datasets": {"count": INT, "all_accepted": BOOL, "lineage_verified": BOOL,
                 "not_accepted": STRINGS},
    "evaluation": {
        "present": BOOL, "signed": BOOL, "count": INT, "accuracy": DOUBLE,
        "fairness_measured": BOOL, "fairness_gap": DOUBLE,
        "robustness_measured": BOOL, "attack_success_rate": DOUBLE, "robust_accuracy": DOUBLE,
    },
    "approvals": {"required": INT, "valid": INT, "expired": INT, "rejections": INT,
                  "approvers": STRINGS},
    "card": {"present": BOOL, "complete": BOOL, "version": INT, "risk_tier": STRING,
             "missing": STRINGS},
    "providers": {"unassessed": STRINGS},
    "drift": {"open_alerts": INT, "checked": BOOL},
}  # fmt: skip

#: every threshold a document may set: (lowest, highest) allowed
THRESHOLDS: Mapping[str, tuple[float, float]] = {
    "min_accuracy": (0.0, 1.0),
    "max_fairness_gap": (0.0, 1.0),
    "max_attack_success_rate": (0.0, 1.0),
    "min_robust_accuracy": (0.0, 1.0),
}
TIERS = ("minimal", "limited", "high")  # "unacceptable": never approved (EU AI Act Art. 5)
_APPROVALS_RANGE = (1, 10)
_VALID_DAYS_RANGE = (1, 365)
_WAIVER_DAYS_RANGE = (1, 180)
_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_TOP = {"approvals", "waivers", "thresholds", "rules"}

DEFAULT_POLICY = """\
# Bastion's default release policy (used until a project sets its own).
approvals:
  required: {minimal: 1, limited: 1, high: 2}
  valid_days: 90
waivers:
  max_days: 30
thresholds:
  min_accuracy: 0.6
  max_fairness_gap: 0.25
  max_attack_success_rate: 0.9
rules:
  - name: signature
    description: the artifact's signature verifies with the project's trusted key
    expr: facts.signature.valid
  - name: scan
    description: the malicious-serialization scan found nothing
    expr: facts.scan.clean
  - name: training_data
    description: every training dataset version is accepted and its lineage verifies
    expr: facts.datasets.count > 0 && facts.datasets.all_accepted && facts.datasets.lineage_verified
  - name: evaluation
    description: a signed evaluation is present and accurate enough
    expr: facts.evaluation.present && facts.evaluation.accuracy >= thresholds.min_accuracy
  - name: fairness
    description: fairness measured, demographic parity gap within the threshold
    expr: facts.evaluation.fairness_measured && facts.evaluation.fairness_gap <= thresholds.max_fairness_gap
  - name: robustness
    description: adversarial attacks measured, success rate within the threshold
    expr: facts.evaluation.robustness_measured && facts.evaluation.attack_success_rate <= thresholds.max_attack_success_rate
  - name: approvals
    description: enough distinct reviewers approved this digest and card, none rejected
    expr: facts.approvals.valid >= facts.approvals.required && facts.approvals.rejections == 0
  - name: card
    description: the model card is written and complete
    expr: facts.card.complete
  - name: providers
    description: every third-party provider in the lineage is assessed and unexpired
    expr: size(facts.providers.unassessed) == 0
  - name: drift
    description: no drift alert is open on the model's training data
    expr: facts.drift.open_alerts == 0
"""  # noqa: E501


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    expr: str
    line: int
    groups: tuple[str, ...]  # the fact groups it reads (for its evidence)
    paths: tuple[str, ...]  # the facts it reads, e.g. "approvals.valid"
    _program: Any  # celpy Runner (cel-python has no public type for it)

    def evaluate(self, facts: Mapping[str, JSON], thresholds: Mapping[str, float]) -> bool:
        """True/False; raises ``ReleasePolicyInvalid`` if it cannot be evaluated."""
        activation = {"facts": celpy.adapter.json_to_cel(dict(facts)),
                      "thresholds": celpy.adapter.json_to_cel(dict(thresholds))}  # fmt: skip
        try:
            value = self._program.evaluate(activation)
        except Exception as e:  # CELEvalError and the TypeErrors it wraps
            raise ReleasePolicyInvalid(f"rule {self.name!r} (line {self.line}): {e}") from e
        if not isinstance(value, celpy.celtypes.BoolType):
            raise ReleasePolicyInvalid(
                f"rule {self.name!r} (line {self.line}) yields {type(value).__name__}, "
                "not a boolean"
            )
        return bool(value)


@dataclass(frozen=True)
class ReleasePolicy:
    required: Mapping[str, int]  # risk tier -> approvals needed
    valid_days: int
    waiver_max_days: int
    thresholds: Mapping[str, float]
    rules: tuple[Rule, ...]
    sha256: str

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


def _refuse(line: int | None, reason: str) -> ReleasePolicyInvalid:
    where = f"line {line}: " if line else ""
    return ReleasePolicyInvalid(
        f"release policy refused: {where}{reason}",
        hint="fix the document and set it again; the previous policy stays active "
        "(bastion gate policy show prints it, docs/governance.md lists the facts)",
    )


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise _refuse(_line(node), f"{what} must be a mapping")
    out: dict[str, tuple[yaml.Node, int]] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else None
        if not isinstance(key, str) or key in out:
            raise _refuse(_line(k), f"{what}: bad or repeated key {key!r}")
        out[key] = (v, _line(k))
    return out


def _scalar(node: yaml.Node, what: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _refuse(_line(node), f"{what} must be a single value")
    return yaml.safe_load(yaml.serialize(node))


def _number(node: yaml.Node, what: str, lo: float, hi: float, *, integer: bool = False) -> float:
    value = _scalar(node, what)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        kind = "a whole number" if integer else "a number"
        raise _refuse(_line(node), f"{what} must be {kind}, not {value!r}")
    if not lo <= value <= hi:
        raise _refuse(_line(node), f"{what} = {value} is out of range [{lo}, {hi}]")
    return float(value)


def parse_policy(text: str) -> ReleasePolicy:
    """Parse, check and compile a release policy; ``ReleasePolicyInvalid`` names the line."""
    if len(text.encode("utf-8")) > 256 * 1024:
        raise _refuse(None, "the document is larger than 256 KiB")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise _refuse(mark.line + 1 if mark else None, f"not valid YAML: {e}") from e
    if root is None:
        raise _refuse(None, "the document is empty")
    top = _mapping(root, "the policy")
    for key, (_, line) in top.items():
        if key not in _TOP:
            raise _refuse(line, f"unknown key {key!r} (allowed: {', '.join(sorted(_TOP))})")
    for key in ("approvals", "rules"):
        if key not in top:
            raise _refuse(None, f"the policy has no {key!r} section")
    required, valid_days = _approvals(top["approvals"][0])
    waiver_days = _WAIVER_DAYS_RANGE[1] // 6
    if "waivers" in top:
        w = _mapping(top["waivers"][0], "waivers")
        for key, (node, line) in w.items():
            if key != "max_days":
                raise _refuse(line, f"waivers: unknown key {key!r} (allowed: max_days)")
            waiver_days = int(_number(node, "waivers.max_days", *_WAIVER_DAYS_RANGE, integer=True))
    thresholds: dict[str, float] = {}
    if "thresholds" in top:
        for key, (node, line) in _mapping(top["thresholds"][0], "thresholds").items():
            if key not in THRESHOLDS:
                raise _refuse(
                    line, f"unknown threshold {key!r} (known: {', '.join(sorted(THRESHOLDS))})"
                )
            thresholds[key] = _number(node, f"thresholds.{key}", *THRESHOLDS[key])
    rules = _rules(top["rules"][0], thresholds)
    return ReleasePolicy(
        required, valid_days, waiver_days, thresholds, rules,
        hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )  # fmt: skip


def _approvals(node: yaml.Node) -> tuple[dict[str, int], int]:
    a = _mapping(node, "approvals")
    for key, (_, line) in a.items():
        if key not in ("required", "valid_days"):
            raise _refuse(line, f"approvals: unknown key {key!r} (allowed: required, valid_days)")
    if "required" not in a:
        raise _refuse(_line(node), "approvals: say how many approvals each risk tier needs")
    required: dict[str, int] = {}
    for tier, (n, line) in _mapping(a["required"][0], "approvals.required").items():
        if tier not in TIERS:
            hint = (
                " (an unacceptable-risk model is never approved)" if tier == "unacceptable" else ""
            )
            raise _refuse(line, f"approvals.required: unknown risk tier {tier!r}{hint}")
        required[tier] = int(_number(n, f"approvals.required.{tier}", *_APPROVALS_RANGE,
                                     integer=True))  # fmt: skip
    missing = [t for t in TIERS if t not in required]
    if missing:
        raise _refuse(_line(a["required"][0]), f"approvals.required: no count for {missing}")
    days = 90
    if "valid_days" in a:
        days = int(_number(a["valid_days"][0], "approvals.valid_days", *_VALID_DAYS_RANGE,
                           integer=True))  # fmt: skip
    return required, days


def _rules(node: yaml.Node, thresholds: Mapping[str, float]) -> tuple[Rule, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise _refuse(_line(node), "rules must be a non-empty list of {name, expr, description}")
    env = celpy.Environment()
    seen: set[str] = set()
    rules: list[Rule] = []
    for item in node.value:
        fields = _mapping(item, "a rule")
        for key, (_, line) in fields.items():
            if key not in ("name", "expr", "description"):
                raise _refuse(line, f"a rule has unknown key {key!r} (name, expr, description)")
        if "name" not in fields or "expr" not in fields:
            raise _refuse(_line(item), "every rule needs a name and an expr")
        name = _scalar(fields["name"][0], "a rule name")
        if not isinstance(name, str) or not _RULE_NAME.match(name) or name in seen:
            raise _refuse(fields["name"][1], f"bad or repeated rule name {name!r}")
        seen.add(name)
        expr = _scalar(fields["expr"][0], f"rule {name}: expr")
        desc = _scalar(fields["description"][0], "description") if "description" in fields else ""
        if not isinstance(expr, str) or not expr.strip() or not isinstance(desc, str):
            raise _refuse(fields["expr"][1], f"rule {name}: expr must be a CEL expression")
        rules.append(_compile(env, name, desc, expr, fields["expr"][1], thresholds))
    return tuple(rules)


def _compile(
    env: celpy.Environment,
    name: str,
    desc: str,
    expr: str,
    line: int,
    thresholds: Mapping[str, float],
) -> Rule:
    try:
        ast = env.compile(expr)
    except CELParseError as e:
        at = line + (e.line or 1) - 1
        first = str(e.args[0]).splitlines()[0] if e.args else ""
        raise _refuse(at, f"rule {name!r} does not compile (column {e.column}): {first}") from e
    paths = _check_names(ast, name, line, thresholds)
    rule = Rule(
        name, desc, expr, line,
        tuple(sorted({p.split(".")[0] for p in paths})), tuple(sorted(paths)),
        env.program(ast),
    )  # fmt: skip
    try:
        rule.evaluate(sample_facts(), thresholds)
    except ReleasePolicyInvalid as e:
        raise _refuse(line, f"rule {name!r} cannot be evaluated: {e.message}") from e
    return rule


def _path(tree: Any) -> list[str] | None:
    if isinstance(tree, lark.Token):
        return None
    if tree.data == "member_dot":
        inner = _path(tree.children[0])
        return None if inner is None else [*inner, str(tree.children[1])]
    if tree.data in ("member", "primary") and len(tree.children) == 1:
        return _path(tree.children[0])
    if tree.data == "ident":
        return [str(tree.children[0])]
    return None


def _check_names(ast: Any, name: str, line: int, thresholds: Mapping[str, float]) -> set[str]:
    bound: set[str] = set()
    for t in ast.iter_subtrees():
        macro = t.data == "member_dot_arg" and str(t.children[1]) in _MACROS
        if macro and len(t.children) > 2 and t.children[2].children:
            first = t.children[2].children[0]  # the bound variable: x.all(v, ...)
            bound |= {str(i.children[0]) for i in first.iter_subtrees() if i.data == "ident"}
    used: set[str] = set()
    for t in ast.iter_subtrees():
        if t.data == "ident":
            ident = str(t.children[0])
            if ident not in ("facts", "thresholds") and ident not in bound:
                raise _refuse(line, f"rule {name!r} names {ident!r}: only facts.* and "
                                    "thresholds.* exist")  # fmt: skip
        if t.data != "member_dot":
            continue
        path = _path(t) or []
        if path[:1] == ["thresholds"] and len(path) >= 2 and path[1] not in thresholds:
            raise _refuse(line, f"rule {name!r} uses threshold {path[1]!r}, which the "
                                "document does not set")  # fmt: skip
        if path[:1] == ["facts"]:
            schema: str | Schema = FACTS
            for i, part in enumerate(path[1:], start=1):
                if isinstance(schema, str) or part not in schema:
                    raise _refuse(line, f"rule {name!r} names an unknown fact "
                                        f"{'.'.join(path[: i + 1])!r}")  # fmt: skip
                schema = schema[part]
            if isinstance(schema, str):
                used.add(".".join(path[1:]))
    return used


def _sample(schema: Schema) -> dict[str, JSON]:
    values: dict[str, JSON] = {}
    for key, kind in schema.items():
        if isinstance(kind, str):
            samples: dict[str, JSON] = {BOOL: True, INT: 1, DOUBLE: 0.5, STRING: "x",
                                        STRINGS: ["x"]}  # fmt: skip
            values[key] = samples[kind]
        else:
            values[key] = _sample(kind)
    return values


def sample_facts() -> dict[str, JSON]:
    """A value of the right type for every fact (a rule is test-evaluated on it at ``set``)."""
    return _sample(FACTS)


def default_policy() -> ReleasePolicy:
    return parse_policy(DEFAULT_POLICY)


def fact_names() -> list[tuple[str, str]]:
    """(dotted fact name, CEL type) for docs and ``gate policy show --facts``."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, schema: Schema) -> None:
        for key, kind in schema.items():
            if isinstance(kind, str):
                out.append((f"facts.{prefix}{key}", kind))
            else:
                walk(f"{prefix}{key}.", kind)

    walk("", FACTS)
    return out


__all__ = [
    "DEFAULT_POLICY",
    "FACTS",
    "THRESHOLDS",
    "TIERS",
    "ReleasePolicy",
    "Rule",
    "default_policy",
    "fact_names",
    "parse_policy",
    "sample_facts",
]

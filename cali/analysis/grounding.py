"""Checks the LLM's probable cause and remediation against the retrieved incidents, so log text cannot steer them.

The log record is attacker-controlled text (anything a user can get logged), and the LLM reads it. The
knowledge-base incidents are written by people. So:

- A remediation step is *grounded* when a cited incident's fix text supports it: for one of that
  incident's remediation steps (or one clause of it), at least `MIN_SHARED` of the model step's content
  words occur in it, and they are at least `MIN_SUPPORT` of the model step's content words
  (containment, not Jaccard: a model step may be part of a longer fix), with the same polarity (a fix
  that says "never set X" does not support "set X"). `benchmarks/grounding_overlap.py` measures the
  chance level and the paraphrase level behind these two numbers (docs/analysis.md).
- A step that names an *instruction artifact* (a URL, an e-mail address, a host name, an IP address, a
  shell command or a code span) that no retrieved incident holds is dropped: such an artifact comes from
  the log text or is made up, and either way it must not reach on-call as advice.
- Any other step is kept as the model's own suggestion, marked as such.
- A probable cause naming a URL, an e-mail address or a command that no retrieved incident holds is
  replaced by retrieval's cause. Hosts and IPs stay allowed there: a cause rightly names the failing
  endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cali.analysis.model import Hit

MIN_SUPPORT = 0.5
MIN_SHARED = 2

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Function words and the generic verbs of advice ("check", "ensure"): they say nothing about which fix.
_STOP = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "can", "do", "does", "for", "from", "has",
    "have", "if", "in", "into", "is", "it", "its", "make", "may", "might", "more", "most", "must", "no",
    "not", "of", "on", "or", "our", "should", "so", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "this", "those", "to", "too", "up", "use", "using", "via", "was", "we", "were", "when",
    "where", "which", "while", "will", "with", "within", "without", "you", "your", "all", "any", "each",
    "other", "also", "only", "just", "very", "sure", "ensure", "check", "verify", "review", "consider",
    "investigate", "look", "see", "confirm", "make", "making", "try", "run", "step", "steps", "e", "g", "eg",
    "ie", "etc", "add", "through", "instead", "per", "once",
])
_SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
_NEGATION = re.compile(r"\b(?:never|avoid)\b|\bnot\b(?!\s+only\b)|n't\b", re.I)  # "not only" adds, not negates
# Clauses of a fix step: "X; do not Y" or "X. Y" hold two pieces of advice with their own polarity.
_CLAUSE = re.compile(r";\s*|\.\s+(?=[A-Z])|,\s+(?:but|and then)\s+")

_URL = re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^\s<>\"'`)]+|\bwww\.[^\s<>\"'`)]+", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
# A dotted name ending in a top-level domain or an internal suffix. The list leaves out TLDs that are
# also file extensions (.py, .sh, .md, .rs, .pl): "app.py" is a file, not a host.
_TLDS = ("com|net|org|io|dev|app|ai|co|cloud|info|biz|xyz|me|us|uk|de|fr|nl|ru|cn|jp|in|br|top|site|online|"
         "tech|local|internal|intra|corp|lan|svc|example|test|invalid|onion")
_HOST = re.compile(r"(?<![\w.@/-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLDS + r")(?::\d{1,5})?"
                   r"(?![\w-]|\.[a-z0-9])", re.I)
_CODE_SPAN = re.compile(r"`{1,3}([^`]+)`{1,3}")
_SHELL = re.compile(
    r"\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\$\([^)]*\)"
    r"|\b(?:curl|wget|nc|ncat|netcat|bash|sh|zsh|powershell|pwsh|iex|certutil|scp|rsync|sudo|chmod|chown|rm|"
    r"base64|python3?|perl|ruby|node|eval|invoke-webrequest|iwr)\s+(?:-{1,2}[A-Za-z]|[a-z]+://|/|~|\$|\.)",
    re.I)
_ENV_ASSIGN = re.compile(r"\b[A-Z][A-Z0-9_]{2,}=\S+")  # NODE_TLS_REJECT_UNAUTHORIZED=0 is a command too
_REDACTED = re.compile(r"\[REDACTED:\w+\]")  # advice never needs a value that was a secret in the log


def _stem(word: str) -> str:
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: len(word) - len(suffix)] + repl
            if suffix in ("ing", "ed") and len(stem) > 3 and stem[-1] == stem[-2]:
                stem = stem[:-1]  # logged -> log, running -> run
            return stem
    return word


def content_words(text: str) -> set[str]:
    """Lower-cased, lightly stemmed words without stop words and bare numbers; identifiers stay whole."""
    return {_stem(w) for w in (m.group(0).lower() for m in _WORD.finditer(text)) if len(w) > 1 and w not in _STOP}


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def fix_units(fix_steps: Sequence[str]) -> list[str]:
    """Each fix step, and each clause of it when it has several."""
    units: list[str] = []
    for step in fix_steps:
        units.append(step)
        parts = [p for p in _CLAUSE.split(step) if p.strip()]
        if len(parts) > 1:
            units += parts
    return units


def support(step: str, fix_steps: Sequence[str]) -> tuple[float, int]:
    """The best (containment, shared words) of the step's content words in one fix step or clause of the
    same polarity."""
    words = content_words(step)
    if not words:
        return 0.0, 0
    polarity = negated(step)
    best = (0.0, 0)
    for unit in fix_units(fix_steps):
        if negated(unit) != polarity:
            continue
        shared = len(words & content_words(unit))
        best = max(best, (shared / len(words), shared))
    return best


def supported(step: str, fix_steps: Sequence[str]) -> bool:
    share, shared = support(step, fix_steps)
    return shared >= MIN_SHARED and share >= MIN_SUPPORT


@dataclass(frozen=True)
class Artifact:
    kind: str  # url, email, ip, host, command, redacted value
    value: str


ALL_KINDS = ("url", "email", "ip", "host", "command", "redacted value")


def artifacts(text: str, kinds: Sequence[str] = ALL_KINDS) -> list[Artifact]:
    """The instruction artifacts a text names: where to go, whom to write, what to run."""
    found: list[Artifact] = []
    urls = [m.group(0).rstrip(".,;:") for m in _URL.finditer(text)]
    if "url" in kinds:
        found += [Artifact("url", u) for u in urls]
    rest = _URL.sub(" ", text)  # a URL's host is judged with the URL
    emails = [m.group(0) for m in _EMAIL.finditer(rest)]
    if "email" in kinds:
        found += [Artifact("email", e) for e in emails]
    rest = _EMAIL.sub(" ", rest)
    if "ip" in kinds:
        found += [Artifact("ip", m.group(0)) for m in _IP.finditer(rest)]
    if "host" in kinds:
        found += [Artifact("host", m.group(0)) for m in _HOST.finditer(rest)]
    if "command" in kinds:
        found += [Artifact("command", m.group(1).strip()) for m in _CODE_SPAN.finditer(text) if m.group(1).strip()]
        outside = _CODE_SPAN.sub(" ", text)
        found += [Artifact("command", m.group(0).strip()) for m in _SHELL.finditer(outside)]
        found += [Artifact("command", m.group(0).rstrip(".,;:")) for m in _ENV_ASSIGN.finditer(outside)]
    if "redacted value" in kinds:
        found += [Artifact("redacted value", m.group(0)) for m in _REDACTED.finditer(text)]
    return found


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def evidence_text(hits: Sequence[Hit]) -> str:
    """What the knowledge base said about these incidents: the only text advice may take artifacts from."""
    return _norm("\n".join(f"{h.title}\n{h.root_cause}\n" + "\n".join(h.remediation) for h in hits))


def foreign(text: str, evidence: str, kinds: Sequence[str] = ALL_KINDS) -> list[Artifact]:
    """The artifacts of `text` that the (normalised) knowledge-base evidence does not contain."""
    return [a for a in artifacts(text, kinds) if a.kind == "redacted value" or _norm(a.value) not in evidence]


@dataclass
class Grounded:
    probable_cause: str
    remediation: list[str] = field(default_factory=list)
    remediation_from: list[str] = field(default_factory=list)
    model_suggestions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_KIND_WORDS = {"url": "a URL", "email": "an e-mail address", "ip": "an IP address", "host": "a host name",
               "command": "a command"}


def _where(a: Artifact, log_text: str) -> str:
    if a.kind == "redacted value":
        return "repeats a value that was redacted from the log"
    origin = "it appears in the log text" if _norm(a.value) in _norm(log_text) else "nothing retrieved holds it"
    return f"names {_KIND_WORDS[a.kind]} that no retrieved incident holds ({origin})"


def ground(probable_cause: str, steps: Sequence[str], *, cited: Sequence[Hit], shown: Sequence[Hit],
           log_text: str, fallback_cause: str, max_steps: int = 6) -> Grounded:
    """Sorts the model's steps into grounded, own suggestions and dropped; replaces a cause that instructs.

    `cited` are the incidents the model cited (and that were retrieved); `shown` all the incidents the
    model saw, whose text is the evidence artifacts may come from.
    """
    evidence = evidence_text(shown)
    out = Grounded(probable_cause=probable_cause.strip())
    bad = foreign(out.probable_cause, evidence, ("url", "email", "command", "redacted value"))
    if bad:
        out.probable_cause = fallback_cause
        out.notes.append(f"the model's probable cause was replaced by retrieval's: it {_where(bad[0], log_text)}")
    dropped: list[str] = []
    for raw in steps:
        step = raw.strip()
        if not step or step in out.remediation or step in out.model_suggestions:
            continue
        bad = foreign(step, evidence)
        if bad:
            dropped.append(_where(bad[0], log_text))
            continue
        source = next((h.id for h in cited if supported(step, h.remediation)), None)
        if source is not None:
            out.remediation.append(step)
            if source not in out.remediation_from:
                out.remediation_from.append(source)
        else:
            out.model_suggestions.append(step)
    out.remediation = out.remediation[:max_steps]
    out.model_suggestions = out.model_suggestions[:max_steps]
    if dropped:
        n = len(dropped)
        out.notes.append(f"{n} suggested step{'s' if n > 1 else ''} dropped: {dropped[0]}")
    return out


__all__ = ["ALL_KINDS", "MIN_SHARED", "MIN_SUPPORT", "Artifact", "Grounded", "artifacts", "content_words",
           "evidence_text", "fix_units", "foreign", "ground", "negated", "support", "supported"]

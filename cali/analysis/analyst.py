"""The LLM step of the analysis: redact, prompt, call, guard, merge with retrieval; degrades, never raises."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from cali.analysis.budget import CallBudget, VerdictCache
from cali.analysis.grounding import ground
from cali.analysis.model import Analysis, Hit
from cali.analysis.prompt import build_prompt, guard_verdict, new_nonce
from cali.core.records import LogRecord
from cali.core.redaction import redact, redact_record
from cali.llm.verdict import ChatLLM, LLMError, LLMVerdict

log = logging.getLogger(__name__)

_MAX_EVIDENCE = 5
_MAX_REMEDIATION = 6


class Analyst:
    """Adds an LLM's probable cause to the retrieval-only analysis.

    How confidence is combined (r = retrieval.confidence, l = the LLM's confidence, w = llm_weight):
    retrieval's support for a category c is s(c) = r for its first category, r/2 for its second and
    third, 0 otherwise. The LLM's category C scores w*l + (1-w)*s(C); retrieval's first category,
    when different, scores (1-w)*r. The higher score names the category and is the confidence, so a
    confident LLM overrules retrieval and a hesitant one does not. Abstain when the LLM abstains
    (unless retrieval was sure, r >= retrieval_override), or when retrieval abstained and the LLM's own
    confidence is below llm_min_confidence.
    """

    def __init__(
        self,
        llm: ChatLLM | None,
        taxonomy: Sequence[str] | Mapping[str, str],
        *,
        timeout_s: float = 30.0,
        max_in_flight: int = 4,
        descriptions: Mapping[str, str] | None = None,
        max_incidents: int = 5,
        redact_ips: bool = False,
        llm_weight: float = 0.6,
        llm_min_confidence: float = 0.7,
        retrieval_override: float = 0.9,
        cache: VerdictCache[LLMVerdict] | None = None,
        budget: CallBudget | None = None,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        if max_in_flight < 1 or timeout_s <= 0 or not 0.0 <= llm_weight <= 1.0:
            raise ValueError("Analyst needs max_in_flight >= 1, timeout_s > 0 and 0 <= llm_weight <= 1")
        self.llm = llm
        self.taxonomy = list(taxonomy)  # a {id: description} mapping (kb.load_taxonomy) gives its ids
        if descriptions is None and isinstance(taxonomy, Mapping):
            descriptions = taxonomy
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.descriptions = dict(descriptions or {})
        self.max_incidents = max_incidents
        self.redact_ips = redact_ips
        self.llm_weight = llm_weight
        self.llm_min_confidence = llm_min_confidence
        self.retrieval_override = retrieval_override
        self.cache = cache
        self.budget = budget
        self._nonce = nonce
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0  # for tests and metrics: calls holding a slot right now

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()  # a Semaphore belongs to the loop that first waits on it
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.max_in_flight), loop
        return self._sem

    async def analyze(self, record: LogRecord, hits: list[Hit], retrieval: Analysis, *,
                      fingerprint: str | None = None) -> Analysis:
        """The merged analysis, or `retrieval` (with degraded_reason when the LLM step failed)."""
        if self.llm is None:
            return retrieval
        try:
            return await self._analyze(record, hits, retrieval, fingerprint)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the analysis must never fail the alert: degrade instead
            log.exception("LLM analysis failed unexpectedly; sending the retrieval-only analysis")
            return _degraded(retrieval, f"llm-internal-error: {type(exc).__name__}")

    async def _analyze(self, record: LogRecord, hits: list[Hit], retrieval: Analysis,
                       fingerprint: str | None) -> Analysis:
        assert self.llm is not None
        clean = redact_record(record, ips=self.redact_ips)
        shown = [_redact_hit(h, self.redact_ips) for h in hits[: self.max_incidents]]
        prompt = build_prompt(clean, shown, self.taxonomy, descriptions=self.descriptions,
                              retrieval_top=retrieval.top_categories[:3], nonce=self._nonce())
        verdict = self.cache.get(fingerprint) if self.cache is not None and fingerprint else None
        if verdict is None:
            if self.budget is not None:
                try:  # the shared budget is a state-store round trip: off the event loop
                    allowed = await asyncio.to_thread(self.budget.try_spend)
                except Exception as exc:  # fail closed: no budget answer, no LLM call
                    log.warning("LLM budget unavailable, sending the retrieval-only analysis: %s", exc)
                    return _degraded(retrieval, f"llm-budget-unavailable ({type(exc).__name__})")
                if not allowed:
                    return _degraded(retrieval, f"llm-daily-budget-exhausted ({self.budget.max_calls} calls/day)")
            try:
                verdict = await self._call(prompt.system, prompt.user)
                verdict = guard_verdict(verdict, self.taxonomy, prompt.system)
            except LLMError as exc:
                log.warning("LLM step degraded to retrieval-only (%s): %s", exc.reason, exc)
                return _degraded(retrieval, exc.reason)
            if self.cache is not None and fingerprint:
                self.cache.put(fingerprint, verdict)
        return self.merge(verdict, retrieval, shown, prompt.log_text)

    async def _call(self, system: str, user: str) -> LLMVerdict:
        assert self.llm is not None
        sem = self._semaphore()
        try:
            async with asyncio.timeout(self.timeout_s):
                async with sem:
                    self.in_flight += 1
                    try:
                        return await self.llm.analyze(system=system, user=user, taxonomy=self.taxonomy)
                    finally:
                        self.in_flight -= 1
        except TimeoutError:
            raise LLMError(f"no LLM verdict within {self.timeout_s}s (waiting for a slot or for the model)",
                           reason="llm-timeout") from None

    def merge(self, verdict: LLMVerdict, retrieval: Analysis, hits: Sequence[Hit], text: str) -> Analysis:
        """One Analysis from a guarded verdict and the retrieval analysis (see the class docstring); the
        cause and the steps are checked against the incidents shown (cali/analysis/grounding.py)."""
        w, r = self.llm_weight, retrieval.confidence
        top = list(retrieval.top_categories) or ([retrieval.category] if retrieval.category else [])
        first = top[0] if top else None

        def support(c: str) -> float:
            return r if c == first else r / 2 if c in top[1:3] else 0.0

        if verdict.category is None or verdict.abstained:
            keep = first is not None and not retrieval.abstained and r >= self.retrieval_override
            category = first if keep else None
            confidence = (1 - w) * r
            abstained = not keep
        else:
            llm_score = w * verdict.confidence + (1 - w) * support(verdict.category)
            retrieval_score = (1 - w) * r
            if first is not None and first != verdict.category and retrieval_score > llm_score:
                category, confidence = first, retrieval_score
            else:
                category, confidence = verdict.category, llm_score
            abstained = retrieval.abstained and verdict.confidence < self.llm_min_confidence
        ordered = [c for c in [category, verdict.category, *top] if c]
        top_categories = list(dict.fromkeys(ordered))
        retrieved = {h.id for h in hits} | {s.id for s in retrieval.similar}
        similar_ids = [i for i in dict.fromkeys(verdict.similar_incident_ids) if i in retrieved]
        # The fix text steps must come from: the incidents the model cited or, when it cited none, the
        # incidents of the category it named (it read them to name it).
        cited = [h for h in hits if h.id in similar_ids] or [h for h in hits if h.category == category]
        checked = ground(verdict.probable_cause, verdict.remediation, cited=cited, shown=hits, log_text=text,
                         fallback_cause=retrieval.probable_cause, max_steps=_MAX_REMEDIATION)
        remediation, sources = checked.remediation, checked.remediation_from
        if not remediation and not abstained and category == retrieval.category:
            remediation, sources = list(retrieval.remediation), list(retrieval.remediation_from)
        return Analysis(
            probable_cause=checked.probable_cause,
            category=None if abstained else category,
            top_categories=top_categories,
            confidence=round(min(1.0, max(0.0, confidence)), 4),
            evidence=grounded_evidence(verdict.evidence, text),
            remediation=remediation,
            remediation_from=sources,
            model_suggestions=checked.model_suggestions,
            grounding_notes=checked.notes,
            similar_incident_ids=similar_ids or list(retrieval.similar_incident_ids),
            similar=list(retrieval.similar),
            similarity_threshold=retrieval.similarity_threshold,
            abstained=abstained,
            mode="llm",
            degraded_reason=None,
        )


def grounded_evidence(evidence: Sequence[str], text: str) -> list[str]:
    """The quoted lines that occur in the (redacted) log text; the rest were made up, and go."""
    kept: list[str] = []
    for line in evidence:
        quote = line.strip()
        if quote and quote in text and quote not in kept:
            kept.append(quote)
    return kept[:_MAX_EVIDENCE]


def _redact_hit(hit: Hit, ips: bool) -> Hit:
    return hit.model_copy(update={
        "title": redact(hit.title, ips=ips),
        "root_cause": redact(hit.root_cause, ips=ips),
        "remediation": [redact(s, ips=ips) for s in hit.remediation],
    })


def _degraded(retrieval: Analysis, reason: str) -> Analysis:
    return retrieval.model_copy(update={"mode": "retrieval-only", "degraded_reason": reason})


__all__ = ["Analyst", "grounded_evidence"]

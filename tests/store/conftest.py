"""Store fixtures: a fresh, migrated database per test on SQLite, and on PostgreSQL when
`TEST_DATABASE_URL` is set (each test gets its own schema, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import store


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the fresh database (tests commit when they need to)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def write_image(path: Path, size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 10, 10)) -> Path:
    """A small solid image; different colours give different sha256s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def project_with_image(session: Session) -> tuple[store.Project, store.Image]:
    """A project with classes cat/dog and one 100x80 image."""
    project = store.create_project(session, name="pets", classes=["cat", "dog"])
    [(image, _)] = store.add_images(session, project_id=project.id,
                                    images=[store.ImageInput("a.jpg", "0" * 64, 100, 80)])
    session.commit()
    return project, image

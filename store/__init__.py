"""Persistence: SQLAlchemy models, repository functions, migrations, importers and exporters (no torch).

Repository functions take a `Session` (keyword-only arguments after the ids) and may flush but never
commit: the caller owns one transaction, usually through `session_scope(engine)`.
"""

from store.box_history import (
    MAX_BOXES_PER_SAVE,
    SaveResult,
    box_history,
    check_box_count,
    save_image_boxes,
    undo_last_change,
)
from store.boxes import (
    BoxDraft,
    add_box,
    delete_box,
    get_box,
    list_boxes,
    restore_box,
    update_box,
    validate_box,
)
from store.db import open_database, schema_revision, session_factory, session_scope, upgrade
from store.errors import ConflictError, ImportFormatError, NotFoundError
from store.io.apply import apply_plan
from store.io.coco import parse_coco
from store.io.export_coco import ExportSummary, coco_document, export_coco
from store.io.export_voc import export_voc
from store.io.folder import parse_folder
from store.io.plan import ImportPlan, ImportSummary, Skipped
from store.io.voc import parse_voc
from store.models import BOX_SOURCES, TASKS, Base, Box, BoxEvent, Class, Image, ImageLabel, Project
from store.models_runs import RUN_STATUSES, Checkpoint, Evaluation, EvaluationImage, TrainingRun
from store.paths import resolve_image_path, stored_path
from store.projects import (
    ImageInput,
    ProjectSummary,
    add_classes,
    add_images,
    create_project,
    find_project,
    get_image,
    get_or_create_project,
    get_project,
    list_classes,
    list_projects,
    project_names,
    set_image_labels,
)
from store.queries import (
    ImagePageRow,
    TrainingExample,
    count_images,
    image_groups,
    image_splits,
    image_splits_by_id,
    neighbour_image,
    page_images,
    training_examples,
)
from store.runs import (
    EvaluationImageResult,
    activate_checkpoint,
    active_checkpoint,
    active_training_run,
    create_training_run,
    evaluation_results,
    evaluations_of,
    find_checkpoint,
    get_checkpoint,
    get_training_run,
    heartbeat,
    latest_evaluation_id,
    list_checkpoints,
    list_evaluations,
    list_training_runs,
    mark_stale_runs_failed,
    record_evaluation,
    register_checkpoint,
    update_training_run,
)

__all__ = [
    "BOX_SOURCES", "MAX_BOXES_PER_SAVE", "RUN_STATUSES", "TASKS", "Base", "Box", "BoxDraft", "BoxEvent", "Checkpoint",
    "Class", "ConflictError", "Evaluation", "EvaluationImage", "EvaluationImageResult", "ExportSummary", "Image",
    "ImageInput", "ImageLabel", "ImagePageRow", "ImportFormatError", "ImportPlan", "ImportSummary", "NotFoundError",
    "Project", "ProjectSummary", "SaveResult", "Skipped", "TrainingExample", "TrainingRun", "activate_checkpoint",
    "active_checkpoint", "active_training_run", "add_box", "add_classes", "add_images", "apply_plan", "box_history",
    "check_box_count", "coco_document", "count_images", "create_project", "create_training_run", "delete_box",
    "evaluation_results", "evaluations_of", "export_coco", "export_voc", "find_checkpoint", "find_project", "get_box",
    "get_checkpoint", "get_image", "get_or_create_project", "get_project", "get_training_run", "heartbeat",
    "image_groups", "image_splits", "image_splits_by_id", "latest_evaluation_id", "list_boxes", "list_checkpoints",
    "list_classes", "list_evaluations", "list_projects", "list_training_runs", "mark_stale_runs_failed",
    "neighbour_image", "open_database", "page_images", "parse_coco", "parse_folder", "parse_voc", "project_names",
    "record_evaluation", "register_checkpoint", "resolve_image_path", "restore_box", "save_image_boxes",
    "schema_revision", "session_factory", "session_scope", "set_image_labels", "stored_path", "training_examples",
    "undo_last_change", "update_box", "update_training_run", "upgrade", "validate_box",
]

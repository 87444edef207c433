"""Importers (Pascal VOC, COCO, folder-per-class) and exporters (COCO, VOC)."""

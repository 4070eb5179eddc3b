"""Which topics an RTDL handler reads: resolved from the registry's EVENT_CLASS_MAP, never spelt out."""

from __future__ import annotations

from runtime.settings import Settings


def topics_for(settings: Settings, event_classes: tuple[str, ...]) -> list[str]:
    """Topic names of `event_classes` (in class order, each once)."""
    class_map = settings.registry.mapping("EVENT_CLASS_MAP")
    names = [settings.registry.topic(class_map[c]["topic"]).name for c in event_classes]
    return list(dict.fromkeys(names))

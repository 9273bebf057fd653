"""Guided tutorials as data (YAML) and the engine that runs them.

See docs/tutorials.md for the file format and the connector protocol.
"""

from allo.assistant.flows.connectors import (
    BookTechnician,
    CheckLineStatus,
    Connector,
    ConnectorArgumentError,
    ConnectorFailure,
    ConnectorRegistry,
    ReportOutage,
    ScriptedConnector,
    demo_registry,
)
from allo.assistant.flows.engine import TutorialEngine
from allo.assistant.flows.model import (
    Tutorial,
    TutorialError,
    demo_folder,
    load_tutorial,
    load_tutorials,
)
from allo.assistant.flows.state import (
    Button,
    ButtonsOutput,
    EndOutput,
    HandoffOutput,
    ImageOutput,
    Output,
    TextOutput,
    TutorialState,
)

__all__ = [
    "BookTechnician",
    "Button",
    "ButtonsOutput",
    "CheckLineStatus",
    "Connector",
    "ConnectorArgumentError",
    "ConnectorFailure",
    "ConnectorRegistry",
    "EndOutput",
    "HandoffOutput",
    "ImageOutput",
    "Output",
    "ReportOutage",
    "ScriptedConnector",
    "TextOutput",
    "Tutorial",
    "TutorialEngine",
    "TutorialError",
    "TutorialState",
    "demo_folder",
    "demo_registry",
    "load_tutorial",
    "load_tutorials",
]

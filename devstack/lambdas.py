"""Run the functions of template.yaml the way Lambda does: one module import per instance, a context
whose remaining time counts down from the function's Timeout."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and our handlers read."""

    function_name: str
    timeout_seconds: float = 30
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def load_module(function_dir: Path, handler: str = "app.lambda_handler") -> ModuleType:
    """Import a function's module under a unique name (every function has an `app.py`)."""
    module_name, _, _ = handler.rpartition(".")
    unique = f"lambda_{function_dir.name}_{module_name}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, function_dir / f"{module_name.replace('.', '/')}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {handler} from {function_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    return module


def load_handler(function_dir: Path, handler: str = "app.lambda_handler") -> Handler:
    module = load_module(function_dir, handler)
    entry: Handler = getattr(module, handler.rpartition(".")[2])
    return entry

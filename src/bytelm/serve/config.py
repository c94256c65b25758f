"""``bytelm serve`` settings: where it listens and how much one request may ask for."""
from dataclasses import dataclass, field

from bytelm.errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(kw_only=True)
class ServeConfig:
    """Limits and address of the playground server (``bytelm serve --help`` names the flags)."""

    host: str = "127.0.0.1"
    """address to bind; only loopback unless told otherwise."""
    port: int = 8000
    """TCP port (0: any free one)."""
    max_bytes: int = 65536
    """longest text one score request may send, in bytes."""
    max_new_bytes: int = 2048
    """most bytes one generation may ask for."""
    batch_size: int = 8
    """windows per forward when scoring (``bytelm eval``'s default, so the sums are identical)."""
    busy_wait_s: float = 1.0
    """how long a generation request waits for a running one to end before a 409."""
    max_curve_points: int = 2000
    """train-curve points sent per run (every k-th step beyond that)."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host headers accepted (empty: any); on loopback the CLI allows only loopback names, so a
    web page on another site cannot reach the server through DNS rebinding."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be in 0..65535, got {self.port}")
        for name in ("max_bytes", "max_new_bytes", "batch_size", "max_curve_points"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_bytes < 2:
            raise UserError("--max-bytes must be >= 2 (the first byte is never scored)")

    @property
    def max_body(self) -> int:
        """Largest request body accepted: a text of max_bytes bytes as escaped JSON or base64."""
        return 6 * self.max_bytes + 4096

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK

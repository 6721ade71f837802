"""autograd.graph: hooks on the tensors the graph saves for backward.

`saved_tensors_hooks(pack, unpack)` changes how every tensor an operation saves is kept:
pack(tensor) runs when it is saved during the forward pass and its result is stored;
unpack(stored) runs when backward needs the tensor and must return it. `save_on_cpu` is the
hook pair that keeps saved GPU tensors in host memory until backward (trading transfer time
for device memory). Hooks nest, innermost first, and are per thread.

They apply to the tensors shardgrad's ops and custom Functions save; an op's internal
scratch arrays (im2col patches, pooling masks) are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable

from . import node as _node

__all__ = ["Node", "disable_saved_tensors_hooks", "save_on_cpu", "saved_tensors_hooks"]

Node = _node.Node


class saved_tensors_hooks:  # noqa: N801 - torch's name
    """Context manager: pack and unpack every tensor the graph saves inside it."""

    def __init__(self, pack_hook: Callable, unpack_hook: Callable) -> None:
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self) -> saved_tensors_hooks:
        blocked = getattr(_disabled, "message", None)
        if blocked is not None:
            raise RuntimeError(blocked)
        _node.push_saved_hooks(self.pack_hook, self.unpack_hook)
        return self

    def __exit__(self, *exc) -> None:
        _node.pop_saved_hooks()


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - torch's name
    """Keep saved tensors in host memory, moving them back to their device for backward."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(tensor):
            return tensor.device, tensor.detach().cpu(), tensor.requires_grad

        def unpack(packed):
            device, host, requires_grad = packed
            return host.to(device).requires_grad_(requires_grad)

        super().__init__(pack, unpack)


class _Disabled:
    message: str | None = None


_disabled = _Disabled()


class disable_saved_tensors_hooks:  # noqa: N801 - torch's name
    """Context manager under which opening saved-tensor hooks is an error with `message`."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __enter__(self) -> None:
        self.previous = _disabled.message
        _disabled.message = self.error_message

    def __exit__(self, *exc) -> None:
        _disabled.message = self.previous

"""Core replies as terminal text."""

from __future__ import annotations

from core.replies import Reply


def render(reply: Reply, who: str) -> str:
    if reply.notice:
        return f"  ({reply.text})"
    lines = [f"{'[updated] ' if reply.edit else ''}{reply.text}"] if reply.text else []
    if reply.image is not None:
        lines.append(f"  image: {reply.image.path}")
    for row in reply.buttons:
        lines.append("  " + "   ".join(f"[{b.label}] {b.action}" for b in row))
    if reply.ask is not None:
        lines.append("  (type your answer on the next line)")
    return "\n".join(f"{who}> {line}" if i == 0 else line for i, line in enumerate(lines))

"""Self-contained HTML reports (figures embedded as base64 PNG, no external files).

Rendered with Jinja2 and autoescaping on: gene names, cell-type labels and any
other text from the data are escaped, never interpreted as HTML.

Example::

    from perturblab.report import Report
    rep = Report("Robustness audit")
    sec = rep.section("Accuracy", id="accuracy")
    sec.text("Test-half accuracy of each classifier.")
    sec.table(df)
    sec.figure(fig, caption="Vulnerable genes")
    rep.write("out/report.html")
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from ..io import write_text

__all__ = ["Report", "Section", "figure_to_data_uri"]


def figure_to_data_uri(fig, dpi: int = 110) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,...`` URI and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class _Block:
    kind: str  # "text" | "table" | "figure" | "list"
    content: object
    caption: str = ""
    id: str = ""


@dataclass
class Section:
    """A titled part of a :class:`Report`; add blocks in display order."""

    title: str
    id: str
    blocks: list[_Block] = field(default_factory=list)

    def text(self, text: str) -> Section:
        """Add a paragraph of plain text (escaped)."""
        self.blocks.append(_Block("text", str(text)))
        return self

    def table(self, df: pd.DataFrame, caption: str = "", max_rows: int = 500, float_format: str = "{:.4g}") -> Section:
        """Add a table (first ``max_rows`` rows; the caption says when rows were left out)."""
        n = len(df)
        shown = df.head(max_rows)
        rows = [[_fmt(v, float_format) for v in r] for r in shown.itertuples(index=False, name=None)]
        if n > max_rows:
            caption = f"{caption} (first {max_rows} of {n} rows; the full table is in the output folder)".strip()
        self.blocks.append(_Block("table", {"columns": [str(c) for c in shown.columns], "rows": rows}, caption))
        return self

    def figure(self, fig, caption: str = "", id: str = "") -> Section:
        """Embed a matplotlib figure (closed after rendering)."""
        self.blocks.append(_Block("figure", figure_to_data_uri(fig), caption, id or f"{self.id}-fig{len(self.blocks)}"))
        return self

    def items(self, items, caption: str = "") -> Section:
        """Add a bulleted list of strings."""
        self.blocks.append(_Block("list", [str(i) for i in items], caption))
        return self


def _fmt(v, float_format: str) -> str:
    if isinstance(v, float):
        return float_format.format(v)
    return "" if v is None else str(v)


class Report:
    """An HTML report made of sections; :meth:`render` returns one self-contained page."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, title: str, id: str | None = None) -> Section:
        """Append and return a new section; ``id`` is the HTML anchor (default: from the title)."""
        sid = id or "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
        sec = Section(title, sid)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("perturblab.report", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        return env.get_template("report.html").render(report=self)

    def write(self, path: str | Path) -> Path:
        """Render and write the report atomically; returns the path."""
        return write_text(path, self.render())

"""The corpus map as an inline SVG: one dot per paper (its position from ui/data.corpus_map), the
topics written on the map at the middle of their region, so it reads without hovering, and the
last answer's sources in red on top. Hovering a dot shows its title (an SVG <title>). Drawn
here rather than with gr.ScatterPlot, whose Vega chart has no text marks and cuts a long legend
to one line; no script and no asset from anywhere."""

from __future__ import annotations

import html

import pandas as pd

WIDTH, HEIGHT, PAD = 1200, 560, 24
CHAR_W, LINE_H = 7.4, 18  # rough size of a label letter at 13px, for keeping labels apart


def _scale(values: pd.Series, lo: float, hi: float, flip: bool = False):
    vmin, vmax = float(values.min()), float(values.max())
    span = (vmax - vmin) or 1.0
    if flip:
        return lambda v: hi - (float(v) - vmin) / span * (hi - lo)
    return lambda v: lo + (float(v) - vmin) / span * (hi - lo)


def place_labels(centres: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Labels at their centres, moved down (then up) until no two boxes overlap."""
    placed: list[tuple[str, float, float]] = []

    def clashes(text: str, x: float, y: float) -> bool:
        half = len(text) * CHAR_W / 2
        for other, ox, oy in placed:
            other_half = len(other) * CHAR_W / 2
            if abs(x - ox) < half + other_half + 6 and abs(y - oy) < LINE_H:
                return True
        return False

    for text, x, y in sorted(centres, key=lambda c: c[2]):
        half = len(text) * CHAR_W / 2
        x = min(max(x, PAD + half), WIDTH - PAD - half)
        for step in range(40):
            dy = (step + 1) // 2 * LINE_H * (1 if step % 2 else -1)
            candidate = min(max(y + dy, PAD + LINE_H), HEIGHT - PAD)
            if not clashes(text, x, candidate):
                y = candidate
                break
        placed.append((text, x, y))
    return placed


def map_svg(
    df: pd.DataFrame,
    colours: dict[str, str],
    source_ids: set[str],
    source_colour: str,
    source_label: str,
) -> str:
    """The map of `df` (x, y, group, topic, title, listing, year, paper_id), dots coloured by
    `group`, topic labels on their regions, sources drawn last."""
    if df.empty:
        return '<div class="corpus-map"><p class="empty">No embeddings to map.</p></div>'
    sx = _scale(df["x"], PAD, WIDTH - PAD)
    sy = _scale(df["y"], PAD, HEIGHT - PAD, flip=True)
    e = html.escape
    dots, sources = [], []
    for row in df.itertuples(index=False):
        tip = e(f"{row.title} — {row.listing}, {row.year}; topic: {row.topic}")
        x, y = sx(row.x), sy(row.y)
        if row.paper_id in source_ids:
            sources.append(
                f'<circle class="source" cx="{x:.1f}" cy="{y:.1f}" r="6.5" fill="{source_colour}" '
                f'stroke="#fff" stroke-width="1.5" data-paper-id="{e(row.paper_id)}">'
                f"<title>{tip}</title></circle>"
            )
        else:
            fill = colours.get(row.group, "#999999")
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" fill-opacity="0.75" '
                f'data-paper-id="{e(row.paper_id)}"><title>{tip}</title></circle>'
            )
    centres = [
        (str(topic), sx(group["x"].median()), sy(group["y"].median()))
        for topic, group in df.groupby("topic", sort=False)
    ]
    labels = [
        f'<text class="topic-label" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">{e(text)}</text>'
        for text, x, y in place_labels(centres)
    ]
    legend = [
        f'<span class="item"><span class="swatch" style="background:{colours.get(g, "#999999")}"></span>'
        f"{e(str(g))} ({n})</span>"
        for g, n in df["group"].value_counts().items()
    ]
    n_sources = int(df["paper_id"].isin(source_ids).sum())
    if n_sources:
        legend.append(
            f'<span class="item"><span class="swatch" style="background:{source_colour}"></span>'
            f"{e(source_label)} ({n_sources})</span>"
        )
    return (
        f'<div class="corpus-map"><svg class="map" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Corpus map: papers with similar abstracts lie close together">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" class="bg"></rect>'
        f"{''.join(dots)}{''.join(labels)}{''.join(sources)}</svg>"
        f'<div class="legend">{"".join(legend)}</div></div>'
    )

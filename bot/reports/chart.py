"""The change-health chart: failures and recoveries per day over four weeks, as a PNG.

matplotlib draws it with the Agg backend, so it renders on a server with no display. It is
sized for a phone: a 1200x675 image (16:9, what Slack previews at full width), large type, two
bar colours a colour-blind reader can tell apart, and days before the history begins hatched.
"""

from __future__ import annotations

import io

from bot.domain.change_health import ChangeHealth

# Okabe-Ito vermillion and bluish green: distinguishable with any colour vision.
FAILURE_COLOUR = "#D55E00"
RECOVERY_COLOUR = "#009E73"
WIDTH_INCHES, HEIGHT_INCHES, DPI = 12.0, 6.75, 100


def chart_png(report: ChangeHealth) -> bytes:
    """The report's chart as PNG bytes."""
    # matplotlib takes seconds to import: only when a chart is drawn, never at every start of
    # `fluxbot` (every CLI command and `serve` would wait for it).
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # headless: no display on a server; must precede pyplot
    from matplotlib import pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    days = report.days
    fig, ax = plt.subplots(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    try:
        x = list(range(len(days)))
        ax.bar(
            [i - 0.2 for i in x],
            [d.failures for d in days],
            width=0.4,
            color=FAILURE_COLOUR,
            label="failures",
        )
        ax.bar(
            [i + 0.2 for i in x],
            [d.recoveries for d in days],
            width=0.4,
            color=RECOVERY_COLOUR,
            label="recoveries",
        )
        top = max([1, *(max(d.failures, d.recoveries) for d in days)])
        for i, day in enumerate(days):
            if not day.covered:
                ax.axvspan(i - 0.5, i + 0.5, color="#BBBBBB", alpha=0.35, hatch="//", lw=0)
        ax.set_ylim(0, top * 1.15 + 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        # A label every week (and the last day) keeps 28 days legible on a narrow screen.
        ticks = [i for i in x if (len(days) - 1 - i) % 7 == 0]
        ax.set_xticks(ticks, [days[i].day.strftime("%d %b") for i in ticks], fontsize=18)
        ax.tick_params(axis="y", labelsize=18)
        ax.set_title(
            f"{report.environment}: failures and recoveries per day",
            fontsize=24,
            loc="left",
        )
        handles, _ = ax.get_legend_handles_labels()
        if any(not d.covered for d in days):
            handles.append(Patch(facecolor="#BBBBBB", alpha=0.35, hatch="//", label="no history"))
        ax.legend(handles=handles, fontsize=16, loc="upper left", frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)

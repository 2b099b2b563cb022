"""myst-nb plugin: render the book's Vega-Lite outputs as interactive charts with no network.

Registered under the ``myst_nb.mime_renderers`` entry point (see ``pyproject.toml``). Each chart
becomes a ``<div>`` plus a ``vegaEmbed`` call; Vega, Vega-Lite and vega-embed come from
``_static/vega-bundle.js``, which `experiments.bookkit.runner` writes into the staged source at build time
(from the ``vl-convert-python`` package, so no CDN and no internet). The div id is derived from the
cell and output index, so rebuilding gives byte-identical pages.
"""

from __future__ import annotations

import json

from docutils import nodes

from experiments.charts import MIME

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


class VegaLitePlugin:
    """Turn ``application/vnd.vegalite.v5+json`` outputs into embedded charts in HTML builds."""

    mime_priority_overrides = (("html", MIME, 1), ("dirhtml", MIME, 1), ("singlehtml", MIME, 1))

    @staticmethod
    def handle_mime(renderer, data, inline):
        """A Vega-Lite output as a ``<div>``, its spec (``</`` escaped, so it cannot end its ``<script>``)
        and a ``vegaEmbed`` call; None for inline use and other MIME types, which myst-nb renders as usual."""
        if inline or data.mime_type != MIME:
            return None
        spec = data.content if isinstance(data.content, dict) else json.loads(data.string)
        spec = {**spec, "$schema": VEGA_LITE_SCHEMA}
        div_id = f"cachebook-chart-{data.cell_index}-{data.output_index}"
        payload = json.dumps(spec, sort_keys=True).replace("</", "<\\/")
        html = (
            f'<div id="{div_id}" class="cachebook-chart"></div>\n'
            f'<script type="application/json" id="{div_id}-spec">{payload}</script>\n'
            f"<script>vegaEmbed('#{div_id}', JSON.parse(document.getElementById('{div_id}-spec').textContent),"
            f" {{actions: false}}).catch(function (err) {{ console.error(err); throw err; }});</script>"
        )
        return [nodes.raw("", html, format="html", classes=["output", "text_html"])]

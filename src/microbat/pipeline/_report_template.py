"""HTML skeleton and style of the twin report (kept in Python so it ships in every wheel)."""

from __future__ import annotations

from string import Template

CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#d8dde6; --accent:#1f5fa8; --bad:#a8321f;
        --ok:#2a7a3b; --warn:#9a6a00; --bg:#fbfcfe; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin: 2em 0 0.5em; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
.sub { color: var(--muted); margin: 0 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: right; }
th { background: #eef2f8; }
td.l, th.l { text-align: left; }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 0.88em; margin-top: 4px; }
.diag { background: #fff; border-left: 5px solid var(--accent); padding: 12px 18px;
        margin: 1em 0; }
.diag p.head { font-weight: 600; font-size: 1.08em; margin-top: 0; }
.absent { background: #f6f6f6; border: 1px dashed #b9c0cc; padding: 10px 16px;
          color: var(--muted); }
.status-complete { color: var(--ok); } .status-failed { color: var(--bad); font-weight: 600; }
.status-not_available, .status-skipped { color: var(--warn); }
ul.notes li { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.88em; }
pre { background: #f1f3f7; padding: 10px; overflow-x: auto; }
nav a { margin-right: 12px; }
"""

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="microbat $version">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
<h1>$title</h1>
<p class="sub">$subtitle</p>
<nav>$nav</nav>
$body
<footer><p class="sub">Made by microbat $version on $created. Numbers in SI units unless
a unit says otherwise; per-axis values in array axis order (axis 0 first).
Machine-readable results: <code>results.json</code> beside this file.</p></footer>
</main>
</body>
</html>
"""
)

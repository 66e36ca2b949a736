"""A terminal screen captured with colours (`tmux capture-pane -e -p > screen.ansi`) as one HTML page, for a README screenshot:
    python3 terminal-to-html.py screen.ansi > screen.html
    chromium --headless=new --no-sandbox --force-device-scale-factor=2 --window-size=1050,310 --screenshot=screen.png screen.html
Only SGR colour codes are read (8, 16, 256 and 24-bit colours, bold, dim, reverse); cutover-top.png was made this way."""
import html, re, sys
BASE = ["#1e1e1e","#cd3131","#0dbc79","#e5e510","#2472c8","#bc3fbc","#11a8cd","#e5e5e5",
        "#666666","#f14c4c","#23d18b","#f5f543","#3b8eea","#d670d6","#29b8db","#ffffff"]
def c256(n):
    if n < 16: return BASE[n]
    if n < 232:
        n -= 16; v = [0,95,135,175,215,255]
        return "#%02x%02x%02x" % (v[n//36], v[(n//6)%6], v[n%6])
    g = 8 + 10*(n-232); return "#%02x%02x%02x" % (g,g,g)
FG, BG = "#d4d4d4", "#1e1e1e"
text = open(sys.argv[1], encoding="utf-8").read().rstrip("\n")
state = dict(fg=None, bg=None, bold=False, rev=False, dim=False)
out = []
def span(s):
    if not s: return
    fg = state["fg"] or FG; bg = state["bg"] or BG
    if state["rev"]: fg, bg = bg, fg
    style = f"color:{fg};" + (f"background:{bg};" if bg != BG else "") + ("font-weight:bold;" if state["bold"] else "") + ("opacity:.7;" if state["dim"] else "")
    out.append(f'<span style="{style}">{html.escape(s)}</span>')
pos = 0
for m in re.finditer(r"\x1b\[([0-9;]*)m", text):
    span(text[pos:m.start()]); pos = m.end()
    codes = [int(c) if c else 0 for c in m.group(1).split(";")]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0: state.update(fg=None, bg=None, bold=False, rev=False, dim=False)
        elif c == 1: state["bold"] = True
        elif c == 2: state["dim"] = True
        elif c == 22: state["bold"] = state["dim"] = False
        elif c == 7: state["rev"] = True
        elif c == 27: state["rev"] = False
        elif 30 <= c <= 37: state["fg"] = BASE[c-30]
        elif 90 <= c <= 97: state["fg"] = BASE[c-90+8]
        elif 40 <= c <= 47: state["bg"] = BASE[c-40]
        elif 100 <= c <= 107: state["bg"] = BASE[c-100+8]
        elif c == 39: state["fg"] = None
        elif c == 49: state["bg"] = None
        elif c in (38, 48) and i+1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i+1] == 5: state[key] = c256(codes[i+2]); i += 2
            elif codes[i+1] == 2: state[key] = "#%02x%02x%02x" % tuple(codes[i+2:i+5]); i += 4
        i += 1
span(text[pos:])
print(f"""<!doctype html><html><head><meta charset="utf-8"><style>
body{{margin:0;background:{BG};}}
pre{{margin:0;letter-spacing:0;padding:14px 16px;font:14px/1.17 'DejaVu Sans Mono','Liberation Mono',monospace;color:{FG};background:{BG};display:inline-block;}}
</style></head><body><pre>{''.join(out)}</pre></body></html>""")

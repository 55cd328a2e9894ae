"""What the browser tests' site holds: its blogs, their posts and the posts' text, and the
blogs' pictures.

The posts' HTML points at PICTURES on the site's own address; the browser context (open_tab in
conftest.py) answers those requests with picture(), so pages look as they would with real
pictures and nothing leaves loopback.
"""

from __future__ import annotations

LONG_NAME = ("The Association of Ward Branch Secretaries, Allotment Holders and Friends of the "
             "Municipal Swimming Baths (North-East Region)")

# key -> (title, category)
BLOGS = {
    "valley": ("Valley Socialist", "Local parties"),
    "fabian": ("Fabian Review", "Think tanks"),
    "long": (LONG_NAME, "Local parties"),
    "doorstep": ("Green Doorstep", "Campaigns"),  # erroring: its last fetches failed
    "unions": ("Unions Together Weekly", "Trade unions"),
    "north": ("Northern Voice", "News and comment"),
    "equality": ("Sisters in the Movement", "Campaigns"),
    "youth": ("Young Members' Network", "Youth"),
    "townhall": ("Town Hall Watch", "News and comment"),
    "coop": ("The Co-op Column", "Co-operatives"),
    "rural": ("Rural Reds", "Local parties"),
    "tenants": ("Tenants First", "Campaigns"),
}

# (blog, title, author, tags); the first is the post with every kind of content.
POSTS = [
    ("valley", "Canvassing in the rain on the Moorside estate", "Mary Jones", ("canvassing", "local elections")),
    ("valley", "Saturday on the estate: forty doors, four new members", "Mary Jones", ("canvassing",)),
    ("valley", "Why the bus cuts matter more than the budget headline", "Tom Patel", ("transport", "council")),
    ("valley", "Minutes of the April branch meeting", "Branch secretary", ("branch",)),
    ("valley", "Council tax: what the rise means for Band B households", "Tom Patel", ("council", "budget")),
    ("valley", "Our candidates for the May elections", "Mary Jones", ("local elections",)),
    ("rural", "Volunteers needed for the leaflet round", "", ("volunteering",)),
    ("valley", "The library stays open, for now", "Tom Patel", ("libraries", "council")),
    ("fabian", "Pamphlets worth reading this spring", "Editorial team", ("books",)),
    ("fabian", "A fairer settlement for local government finance", "Dr Anne Okafor", ("council", "budget")),
    ("fabian", "What the polling tells us about young voters", "Dr Anne Okafor", ("polling", "young people")),
    ("fabian", "Housing: the case for council building at scale", "Editorial team", ("housing",)),
    ("coop", "The four-day week, revisited", "Sam Reid", ("work",)),
    ("coop", "Why our energy co-op is expanding", "Hannah Price", ("energy", "co-operatives")),
    ("long", "Allotments under threat at Mill Lane", "Secretary", ("allotments", "environment")),
    ("long", "Swimming baths reopening: a timeline", "Secretary", ("leisure",)),
    ("long", "Annual general meeting: reports and thanks", "Chair", ("branch",)),
    ("long", "Saving the Mill Lane plots", "Secretary", ("allotments",)),
    ("doorstep", "Clean air zones and the school run", "Priya Shah", ("environment", "transport")),
    ("doorstep", "Planting day at the community orchard", "Priya Shah", ("environment", "volunteering")),
    ("doorstep", "The river report nobody wanted published", "Priya Shah", ("environment",)),
    ("doorstep", "Cycling to the count", "Priya Shah", ("transport", "local elections")),
    ("unions", "Care workers ballot for action", "Unions Together", ("care", "pay")),
    ("unions", "A pay offer that isn't", "Unions Together", ("pay",)),
    ("unions", "Solidarity at the depot picket", "Unions Together", ("pay", "transport")),
    ("unions", "Know your rights: zero-hours contracts", "Legal desk", ("work", "rights")),
    ("unions", "Organising the warehouse, one shift at a time", "Unions Together", ("work",)),
    ("north", "Hustings night at the miners welfare", "Northern Voice", ("local elections",)),
    ("north", "The by-election in numbers", "Northern Voice", ("polling", "local elections")),
    ("north", "Questions for the candidates", "Northern Voice", ("local elections",)),
    ("townhall", "What happened to the high street fund?", "Lee Morgan", ("council", "budget")),
    ("townhall", "Cabinet papers: the bits they hoped you would skip", "Lee Morgan", ("council",)),
    ("north", "Letters: on trams, tolls and trust", "Readers", ("transport",)),
    ("equality", "Childcare costs and the cost of standing for office", "Ruth Adeyemi", ("equality",)),
    ("equality", "Mentoring scheme for first-time candidates opens", "Ruth Adeyemi", ("equality", "branch")),
    ("equality", "Safe spaces at conference: the new code", "Ruth Adeyemi", ("equality", "conference")),
    ("youth", "Our first fringe event", "Jamie Lowe", ("conference", "young people")),
    ("youth", "Votes at sixteen: the campaign so far", "Jamie Lowe", ("young people",)),
    ("tenants", "Student rents, explained", "Aisha Khan", ("housing", "young people")),
    ("tenants", "Damp, mould and the landlord who would not answer", "Tenants First", ("housing",)),
    ("youth", "Canvassing for beginners: a short guide", "Aisha Khan", ("canvassing", "young people")),
    ("youth", "Why I joined", "", ("young people",)),
    ("youth", "Summer school programme announced", "Jamie Lowe", ("young people", "branch")),
]

PARAGRAPHS = [
    ("The council's own figures show the gap growing every year, and the people who feel it first are "
     "the ones with the least room to absorb it. We went through the papers line by line."),
    ("Thanks to everyone who came out on a cold evening. Twenty-three members signed in, which is the "
     "best turnout since the branch was re-founded, and the tea urn survived."),
    ("Nobody on the doorstep asked about the national polls. They asked about the buses, the damp in "
     "the flats on Station Road and whether the youth club would still be there in September."),
    ("We have written to the cabinet member asking for the full consultation responses to be published, "
     "not just the summary, and we will share the reply here when it arrives."),
    ("If you can spare an hour on a weekday evening, the leaflet round needs you. Routes are short, "
     "maps are provided, and the branch pays for the chips afterwards."),
    ("It is easy to be cynical about hustings, but the room was full and the questions were sharp. "
     "Three candidates turned up; the fourth sent a statement that nobody read out."),
]

RICH_BODY = """\
<p>We knocked on <strong>212 doors</strong> on Saturday, in steady rain, and spoke to 87 people.
This is what they told us, in roughly the order they told us.</p>
<figure><img src="/static/favicon.svg" alt="The branch's red rosette logo" width="96" height="96">
<figcaption>Our new rosette, printed on recycled card.</figcaption></figure>
<h2>What people raised</h2>
<ol>
<li>The number 14 bus, which now stops at six in the evening.</li>
<li>Damp and mould in the flats on Station Road, reported and not fixed.</li>
<li>The <em>proposed</em> closure of the Moorside library.</li>
</ol>
<h3>And what they did not</h3>
<ul>
<li>The leadership contest.</li>
<li>Anything said on television that week.</li>
</ul>
<blockquote><p>"I've lived here forty years and nobody has knocked on this door since the miners' strike.
Come back when it's dry and I'll make you a tea."</p></blockquote>
<p>The full ward results are in the <a href="https://example.org/ward-results-2024">council's published
tables</a>; our own notes are in the branch drive at
<a href="https://example.org/branch/notes/2024/moorside-estate-canvass-session-notes-final-version-2">https://example.org/branch/notes/2024/moorside-estate-canvass-session-notes-final-version-2</a>.</p>
<table>
<caption>Doors and conversations by street</caption>
<thead><tr><th scope="col">Street</th><th scope="col">Doors</th><th scope="col">Spoke to</th></tr></thead>
<tbody>
<tr><td>Station Road</td><td>74</td><td>31</td></tr>
<tr><td>Moorside Crescent</td><td>88</td><td>35</td></tr>
<tr><td>Chapel Walk</td><td>50</td><td>21</td></tr>
</tbody>
</table>
<table>
<caption>Moorside ward, borough elections (votes)</caption>
<thead><tr><th scope="col">Candidate</th><th scope="col">Party</th><th scope="col">2014</th><th scope="col">2018</th>
<th scope="col">2022</th><th scope="col">2024 by-election</th><th scope="col">Change since 2022</th></tr></thead>
<tbody>
<tr><td>Margaret Okonkwo-Henderson</td><td>Labour and Co-operative</td><td>1,412</td><td>1,655</td><td>1,702</td>
<td>1,913</td><td>+211</td></tr>
<tr><td>Christopher Pemberton-Smythe</td><td>Conservative</td><td>1,120</td><td>1,004</td><td>987</td><td>702</td>
<td>&#8722;285</td></tr>
</tbody>
</table>
<h2>Next time</h2>
<p>We are out again on the 14th, canvassing the streets south of the park. Bring an umbrella.</p>
"""


def body(i: int, title: str) -> str:
    if i == 0:
        return f'<p><img src="{PICTURES}0.svg" width="1200" height="800" alt="{PICTURED[title]}"></p>' + RICH_BODY
    paras = [PARAGRAPHS[(i + k) % len(PARAGRAPHS)] for k in range(1 + i % 3)]
    html = f"<p>{title}. {paras[0]}</p>"
    if title in PICTURED:  # the post's first picture: the front page shows it (issue 14)
        alt = f' alt="{PICTURED[title]}"' if PICTURED[title] else ""
        html = f'<p><img src="{PICTURES}{i}.svg" width="1200" height="800"{alt}></p>' + html
    if i % 4 == 1:
        html += "<h2>What happens next</h2><ul><li>A report to the next branch meeting.</li>" \
                "<li>A letter to the council.</li><li>A stall at the market on Saturday.</li></ul>"
    if i % 5 == 2:
        html += "<blockquote><p>We will not be told that this is the only way to balance the books.</p></blockquote>"
    html += "".join(f"<p>{p}</p>" for p in paras[1:])
    html += f'<p>More on <a href="https://example.org/{i}">the branch website</a>.</p>'
    return html


PICTURES = "/fixture-pictures/"  # served by the browser context (open_tab), not the site
PICTURED = {  # title -> its picture's alt text ("" when the feed gives none)
    "Canvassing in the rain on the Moorside estate": "Canvassers in waterproofs between two tower blocks",
    "Care workers ballot for action": "Care workers with placards outside the town hall",
    "Hustings night at the miners welfare": "",
    "Housing: the case for council building at scale": "New council homes under construction",
    "Saturday on the estate: forty doors, four new members": "Volunteers with clipboards on an estate",
    "The river report nobody wanted published": "The river below the weir",
    "Planting day at the community orchard": "",
    "Our first fringe event": "A full room at the fringe meeting",
    "Student rents, explained": "",
    "Solidarity at the depot picket": "Pickets at the depot gates at dawn",
    "Votes at sixteen: the campaign so far": "",
}
HUES = ("#8c2f39", "#2a6f97", "#3a7d44", "#b5651d", "#5e548e", "#2b9348", "#9d4edd", "#bc4749")


def picture(url: str) -> str:
    """A landscape for picture number N of the fixture: sky, sun, hills, in a colour of its own."""
    n = sum(map(ord, url)) % len(HUES)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800" viewBox="0 0 1200 800">'
            f'<rect width="1200" height="800" fill="{HUES[n]}"/><circle cx="{300 + n * 90}" cy="240" r="130" '
            f'fill="#f4d35e"/><path d="M0 560 L260 400 L520 520 L820 360 L1200 500 V800 H0Z" fill="#1d1d1f" '
            f'opacity=".55"/><path d="M0 680 L340 560 L700 660 L1200 580 V800 H0Z" fill="#1d1d1f" opacity=".7"/>'
            f"</svg>")

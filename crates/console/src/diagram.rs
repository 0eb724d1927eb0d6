//! Graph drawing for the console: a layered layout (ranks by longest path
//! over the graph with its cycles broken, orders by barycentre sweeps, as
//! Sugiyama-style tools do), rendered as SVG for the pages and exported as
//! SVG and as a draw.io file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

/// Which way ranks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ranks are rows, top to bottom.
    #[default]
    TopDown,
    /// Ranks are columns, left to right.
    LeftRight,
}

impl Direction {
    /// The (x, y) of what is `along` the ranks and `across` them: the one
    /// place the directions differ (a swap of the axes). The swap is its
    /// own inverse, so it also turns (x, y) back into (along, across).
    fn xy<T>(self, along: T, across: T) -> (T, T) {
        match self {
            Direction::TopDown => (across, along),
            Direction::LeftRight => (along, across),
        }
    }

    /// `td` / `lr` (also `tb`, `top-down`, `left-right`).
    pub fn parse(s: &str) -> Option<Direction> {
        match s.to_ascii_lowercase().as_str() {
            "td" | "tb" | "top-down" => Some(Direction::TopDown),
            "lr" | "left-right" => Some(Direction::LeftRight),
            _ => None,
        }
    }
}

/// A node to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct DNode {
    pub id: String,
    pub label: String,
    /// A second, smaller line (a rate, a lag badge, a kind).
    pub badge: String,
    /// CSS class (`service`, `topic`, `group`, a layer's name…).
    pub class: String,
    /// A fixed rank (the architecture's layers); `None`: from the edges.
    pub rank: Option<usize>,
}

/// An edge to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct DEdge {
    pub from: String,
    pub to: String,
    pub label: String,
    pub class: String,
}

/// A graph to lay out; `bands` names the fixed ranks (drawn as labelled
/// stripes behind the nodes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagram {
    pub nodes: Vec<DNode>,
    pub edges: Vec<DEdge>,
    pub bands: Vec<String>,
}

/// A node with its box.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub node: DNode,
    pub rank: usize,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// The laid-out graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub direction: Direction,
    pub nodes: Vec<Placed>,
    pub edges: Vec<DEdge>,
    pub bands: Vec<(String, f64, f64)>,
    pub width: f64,
    pub height: f64,
}

const NODE_H: f64 = 40.0;
const GAP: f64 = 24.0;
const RANK_GAP_TD: f64 = 80.0;
const RANK_GAP_LR: f64 = 120.0;
const MARGIN: f64 = 24.0;
/// Room for a band's name left of a row (top-down).
const BAND_LABEL: f64 = 110.0;
/// Room for a band's name above a column (left-right).
const BAND_LABEL_LR: f64 = 28.0;

fn node_width(n: &DNode) -> f64 {
    let chars = n.label.chars().count().max(n.badge.chars().count()) as f64;
    (chars * 7.2 + 24.0).clamp(90.0, 320.0)
}

/// Ranks from the edges: the longest path from a source over the graph
/// with back edges (found by a depth-first search in id order) reversed.
fn ranks(d: &Diagram) -> HashMap<&str, usize> {
    let ids: Vec<&str> = d.nodes.iter().map(|n| n.id.as_str()).collect();
    let known: HashSet<&str> = ids.iter().copied().collect();
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &d.edges {
        if known.contains(e.from.as_str()) && known.contains(e.to.as_str()) && e.from != e.to {
            out.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
    }
    // Iterative DFS marking back edges.
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 on stack, 2 done
    let mut forward: Vec<(&str, &str)> = Vec::new();
    for &root in &ids {
        if state.contains_key(root) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        state.insert(root, 1);
        while let Some((v, i)) = stack.pop() {
            let next = out.get(v).and_then(|o| o.get(i)).copied();
            match next {
                Some(w) => {
                    stack.push((v, i + 1));
                    match state.get(w) {
                        None => {
                            forward.push((v, w));
                            state.insert(w, 1);
                            stack.push((w, 0));
                        }
                        Some(1) => {} // back edge: dropped for ranking
                        Some(_) => forward.push((v, w)),
                    }
                }
                None => {
                    state.insert(v, 2);
                }
            }
        }
    }
    // Longest path over the DAG of forward edges (Kahn's order).
    let mut indeg: HashMap<&str, usize> = ids.iter().map(|i| (*i, 0)).collect();
    let mut succ: HashMap<&str, Vec<&str>> = HashMap::new();
    for (a, b) in &forward {
        *indeg.get_mut(b).expect("known") += 1;
        succ.entry(a).or_default().push(b);
    }
    let mut rank: HashMap<&str, usize> = ids.iter().map(|i| (*i, 0)).collect();
    let mut queue: Vec<&str> = ids.iter().copied().filter(|i| indeg[i] == 0).collect();
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        for &w in succ.get(v).map(Vec::as_slice).unwrap_or(&[]) {
            let r = rank[v] + 1;
            if rank[w] < r {
                rank.insert(w, r);
            }
            let d = indeg.get_mut(w).expect("known");
            *d -= 1;
            if *d == 0 {
                queue.push(w);
            }
        }
    }
    rank
}

/// Lays `d` out.
pub fn layout(d: &Diagram, direction: Direction) -> Layout {
    let computed = ranks(d);
    let rank_of = |n: &DNode| n.rank.unwrap_or_else(|| computed[n.id.as_str()]);
    let rank_count = d.nodes.iter().map(|n| rank_of(n) + 1).max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); rank_count];
    for (i, n) in d.nodes.iter().enumerate() {
        rows[rank_of(n)].push(i);
    }
    let index: HashMap<&str, usize> = d
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); d.nodes.len()];
    for e in &d.edges {
        if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    // Barycentre sweeps: each row ordered by the mean position of its
    // neighbours in the rows already placed.
    let mut pos: Vec<f64> = vec![0.0; d.nodes.len()];
    for row in &rows {
        for (k, &i) in row.iter().enumerate() {
            pos[i] = k as f64;
        }
    }
    for sweep in 0..4 {
        let order: Vec<usize> = if sweep % 2 == 0 {
            (0..rows.len()).collect()
        } else {
            (0..rows.len()).rev().collect()
        };
        for r in order {
            let mut keyed: Vec<(f64, usize)> = rows[r]
                .iter()
                .map(|&i| {
                    let ns = &neighbours[i];
                    let b = if ns.is_empty() {
                        pos[i]
                    } else {
                        ns.iter().map(|&j| pos[j]).sum::<f64>() / ns.len() as f64
                    };
                    (b, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[r] = keyed.iter().map(|(_, i)| *i).collect();
            for (k, &i) in rows[r].iter().enumerate() {
                pos[i] = k as f64;
            }
        }
    }
    // One layout for both directions, in rank-axis terms: `along` runs
    // with the ranks (down the rows, or across the columns), `across`
    // runs within a rank; `Direction::xy` turns them into x and y.
    let banded = !d.bands.is_empty();
    let (rank_gap, band_label) = match direction {
        Direction::TopDown => (RANK_GAP_TD, BAND_LABEL),
        Direction::LeftRight => (RANK_GAP_LR, BAND_LABEL_LR),
    };
    let mut placed: Vec<Placed> = Vec::with_capacity(d.nodes.len());
    let mut bands = Vec::new();
    let mut along = MARGIN;
    let mut across_end: f64 = 0.0;
    for (r, row) in rows.iter().enumerate() {
        // A row is one node high and its nodes keep their widths; a
        // column is as wide as its widest node, so its boxes line up.
        let depth = match direction {
            Direction::TopDown => NODE_H,
            Direction::LeftRight => row
                .iter()
                .map(|&i| node_width(&d.nodes[i]))
                .fold(90.0, f64::max),
        };
        let mut across = MARGIN + if banded { band_label } else { 0.0 };
        for &i in row {
            let breadth = match direction {
                Direction::TopDown => node_width(&d.nodes[i]),
                Direction::LeftRight => NODE_H,
            };
            let (x, y) = direction.xy(along, across);
            let (w, h) = direction.xy(depth, breadth);
            placed.push(Placed {
                node: d.nodes[i].clone(),
                rank: r,
                x,
                y,
                w,
                h,
            });
            across += breadth + GAP;
        }
        across_end = across_end.max(across);
        if banded {
            bands.push((
                band_name(d, r),
                along - rank_gap / 4.0,
                depth + rank_gap / 2.0,
            ));
        }
        along += depth + rank_gap;
    }
    let (width, height) = direction.xy(along - rank_gap + MARGIN, across_end + MARGIN);
    Layout {
        direction,
        nodes: placed,
        edges: d.edges.clone(),
        bands,
        width: width.max(200.0),
        height: height.max(80.0),
    }
}

fn band_name(d: &Diagram, r: usize) -> String {
    d.bands.get(r).cloned().unwrap_or_default()
}

/// The drawing's style: in the console's style sheet for its pages (their
/// policy allows no inline style), inside exported files.
const DIAGRAM_STYLE: &str = concat!("<style>", include_str!("../assets/diagram.css"), "</style>");

/// Text for XML and HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

impl Layout {
    fn find(&self, id: &str) -> Option<&Placed> {
        self.nodes.iter().find(|p| p.node.id == id)
    }

    /// A band's (x, y, width, height): from `at` along the ranks, `size`
    /// deep, across the whole drawing.
    fn band_rect(&self, at: f64, size: f64) -> (f64, f64, f64, f64) {
        let (_, across) = self.direction.xy(self.width, self.height);
        let (x, y) = self.direction.xy(at, 0.0);
        let (w, h) = self.direction.xy(size, across);
        (x, y, w, h)
    }

    /// Where an edge leaves `a` and enters `b`: the facing sides of the
    /// boxes along the rank axis (or the sides, within one rank).
    fn ends(&self, a: &Placed, b: &Placed) -> ((f64, f64), (f64, f64)) {
        let (acx, acy) = (a.x + a.w / 2.0, a.y + a.h / 2.0);
        let (bcx, bcy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
        match self.direction {
            Direction::TopDown if (acy - bcy).abs() > 1.0 => {
                if bcy > acy {
                    ((acx, a.y + a.h), (bcx, b.y))
                } else {
                    ((acx, a.y), (bcx, b.y + b.h))
                }
            }
            Direction::LeftRight if (acx - bcx).abs() > 1.0 => {
                if bcx > acx {
                    ((a.x + a.w, acy), (b.x, bcy))
                } else {
                    ((a.x, acy), (b.x + b.w, bcy))
                }
            }
            _ => {
                if bcx >= acx {
                    ((a.x + a.w, acy), (b.x, bcy))
                } else {
                    ((a.x, acy), (b.x + b.w, bcy))
                }
            }
        }
    }

    /// The drawing as a standalone SVG document. Nodes are `<g>` with
    /// `data-id` (the node id) and a `.badge` text; edges are `<g>` with
    /// `data-from`/`data-to` and a `.rate` text, so a page can update
    /// badges and rates in place.
    pub fn to_svg(&self, title: &str) -> String {
        self.svg(title, false)
    }

    /// [`Layout::to_svg`] with its style inside: a file that draws the same
    /// outside the console.
    pub fn to_svg_document(&self, title: &str) -> String {
        self.svg(title, true)
    }

    fn svg(&self, title: &str, standalone: bool) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" role="img" aria-label="{t}"><title>{t}</title>"#,
            w = self.width,
            h = self.height,
            t = esc(title)
        );
        s.push_str(
            r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/></marker></defs>"##,
        );
        if standalone {
            s.push_str(DIAGRAM_STYLE);
        }
        for (name, at, size) in &self.bands {
            let (x, y, w, h) = self.band_rect(*at, *size);
            let _ = write!(
                s,
                r#"<g class="band"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"/><text x="{tx:.1}" y="{ty:.1}">{n}</text></g>"#,
                tx = x + 8.0,
                ty = y + 18.0,
                n = esc(name)
            );
        }
        for e in &self.edges {
            let (Some(a), Some(b)) = (self.find(&e.from), self.find(&e.to)) else {
                continue;
            };
            let ((x1, y1), (x2, y2)) = self.ends(a, b);
            let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
            // Against the ranks' direction (a service writing back to a
            // topic column before it): a curve, so it reads as a return.
            let back = b.rank < a.rank;
            let d = if back {
                let bend = 40.0 + 10.0 * (a.rank - b.rank) as f64;
                match self.direction {
                    Direction::LeftRight => format!(
                        "M {x1:.1} {y1:.1} C {:.1} {:.1}, {:.1} {:.1}, {x2:.1} {y2:.1}",
                        x1 - bend,
                        y1 - bend,
                        x2 + bend,
                        y2 - bend
                    ),
                    Direction::TopDown => format!(
                        "M {x1:.1} {y1:.1} C {:.1} {:.1}, {:.1} {:.1}, {x2:.1} {y2:.1}",
                        x1 - bend,
                        y1 - bend,
                        x2 - bend,
                        y2 + bend
                    ),
                }
            } else {
                format!("M {x1:.1} {y1:.1} L {x2:.1} {y2:.1}")
            };
            let _ = write!(
                s,
                r#"<g class="edge {c}{back}" data-from="{f}" data-to="{t}"><path d="{d}"/><text class="rate" x="{mx:.1}" y="{my:.1}">{l}</text></g>"#,
                back = if back { " back" } else { "" },
                c = esc(&e.class),
                f = esc(&e.from),
                t = esc(&e.to),
                l = esc(&e.label)
            );
        }
        for p in &self.nodes {
            let _ = write!(
                s,
                r#"<g class="node {c}" data-id="{id}" tabindex="0"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}"/><text x="{tx:.1}" y="{ty:.1}">{l}</text><text class="badge" x="{tx:.1}" y="{by:.1}">{b}</text></g>"#,
                c = esc(&p.node.class),
                id = esc(&p.node.id),
                x = p.x,
                y = p.y,
                w = p.w,
                h = p.h,
                tx = p.x + 10.0,
                ty = p.y + 17.0,
                by = p.y + 32.0,
                l = esc(&p.node.label),
                b = esc(&p.node.badge)
            );
        }
        s.push_str("</svg>");
        s
    }

    /// The drawing as a draw.io (diagrams.net) file: one page, a vertex per
    /// node with its box, an edge per edge, the bands as containers'
    /// labels.
    pub fn to_drawio(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<mxfile host="ultracore"><diagram id="ultracore" name="{t}"><mxGraphModel dx="{w:.0}" dy="{h:.0}" grid="1" gridSize="10" guides="1" tooltips="1" connect="1" arrows="1" fold="1" page="1" pageScale="1" pageWidth="{w:.0}" pageHeight="{h:.0}" math="0" shadow="0"><root><mxCell id="0"/><mxCell id="1" parent="0"/>"#,
            t = esc(title),
            w = self.width,
            h = self.height
        );
        for (i, (name, at, size)) in self.bands.iter().enumerate() {
            let (x, y, w, h) = self.band_rect(*at, *size);
            let _ = write!(
                s,
                r#"<mxCell id="band-{i}" value="{n}" style="rounded=0;whiteSpace=wrap;html=1;fillColor=#f3f4f6;strokeColor=none;align=left;verticalAlign=top;fontStyle=1;fontColor=#6b7280;" vertex="1" parent="1"><mxGeometry x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" as="geometry"/></mxCell>"#,
                n = esc(name)
            );
        }
        let cell: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.node.id.as_str(), i))
            .collect();
        for (i, p) in self.nodes.iter().enumerate() {
            let (fill, stroke) = match p.node.class.split(' ').next().unwrap_or("") {
                "service" => ("#eef2ff", "#6366f1"),
                "topic" => ("#ecfdf5", "#10b981"),
                "group" => ("#fff7ed", "#f59e0b"),
                _ => ("#ffffff", "#6b7280"),
            };
            let value = if p.node.badge.is_empty() {
                esc(&p.node.label)
            } else {
                format!("{}&#xa;{}", esc(&p.node.label), esc(&p.node.badge))
            };
            let _ = write!(
                s,
                r#"<mxCell id="n{i}" value="{value}" tooltip="{id}" style="rounded=1;whiteSpace=wrap;html=0;fillColor={fill};strokeColor={stroke};" vertex="1" parent="1"><mxGeometry x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" as="geometry"/></mxCell>"#,
                id = esc(&p.node.id),
                x = p.x,
                y = p.y,
                w = p.w,
                h = p.h
            );
        }
        for (k, e) in self.edges.iter().enumerate() {
            let (Some(a), Some(b)) = (cell.get(e.from.as_str()), cell.get(e.to.as_str())) else {
                continue;
            };
            let _ = write!(
                s,
                r#"<mxCell id="e{k}" value="{l}" style="endArrow=block;html=0;rounded=0;" edge="1" parent="1" source="n{a}" target="n{b}"><mxGeometry relative="1" as="geometry"/></mxCell>"#,
                l = esc(&e.label)
            );
        }
        s.push_str("</root></mxGraphModel></diagram></mxfile>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, rank: Option<usize>) -> DNode {
        DNode {
            id: id.into(),
            label: id.into(),
            badge: String::new(),
            class: "service".into(),
            rank,
        }
    }

    fn edge(a: &str, b: &str) -> DEdge {
        DEdge {
            from: a.into(),
            to: b.into(),
            label: String::new(),
            class: String::new(),
        }
    }

    #[test]
    fn ranks_follow_the_edges_and_cycles_do_not_loop() {
        let d = Diagram {
            nodes: ["a", "b", "c", "d"].iter().map(|i| node(i, None)).collect(),
            // a → b → c → a (a cycle) and b → d.
            edges: vec![
                edge("a", "b"),
                edge("b", "c"),
                edge("c", "a"),
                edge("b", "d"),
            ],
            bands: vec![],
        };
        let l = layout(&d, Direction::TopDown);
        let rank = |id: &str| l.nodes.iter().find(|p| p.node.id == id).unwrap().rank;
        assert_eq!((rank("a"), rank("b"), rank("c"), rank("d")), (0, 1, 2, 2));
        // Below each other, never overlapping within a row.
        let (a, b) = (l.find("a").unwrap(), l.find("b").unwrap());
        assert!(b.y > a.y + a.h);
        let (c, dd) = (l.find("c").unwrap(), l.find("d").unwrap());
        assert!(c.x + c.w <= dd.x || dd.x + dd.w <= c.x);
        let lr = layout(&d, Direction::LeftRight);
        let (a, b) = (lr.find("a").unwrap(), lr.find("b").unwrap());
        assert!(b.x > a.x + a.w);
    }

    #[test]
    fn fixed_ranks_are_kept_and_bands_drawn() {
        let d = Diagram {
            nodes: vec![node("x", Some(1)), node("y", Some(0)), node("z", Some(1))],
            edges: vec![edge("x", "y")],
            bands: vec!["entry".into(), "data".into()],
        };
        let l = layout(&d, Direction::TopDown);
        assert_eq!(l.find("y").unwrap().rank, 0);
        assert_eq!(l.find("x").unwrap().rank, 1);
        let svg = l.to_svg("t <&>");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(">entry</text>") && svg.contains(">data</text>"));
        assert!(svg.contains(r#"data-id="x""#) && svg.contains(r#"data-from="x" data-to="y""#));
        assert!(svg.contains("t &lt;&amp;&gt;"));
        let drawio = l.to_drawio("t");
        assert!(drawio.starts_with("<mxfile"));
        assert_eq!(drawio.matches(r#"vertex="1""#).count(), 3 + 2);
        assert_eq!(drawio.matches(r#"edge="1""#).count(), 1);
    }

    fn labelled(id: &str, label: &str, badge: &str, class: &str, rank: Option<usize>) -> DNode {
        DNode {
            id: id.into(),
            label: label.into(),
            badge: badge.into(),
            class: class.into(),
            rank,
        }
    }

    fn rated(a: &str, b: &str, label: &str, class: &str) -> DEdge {
        DEdge {
            from: a.into(),
            to: b.into(),
            label: label.into(),
            class: class.into(),
        }
    }

    /// The fixed inputs of the golden drawings: ranks from the edges (a
    /// cycle, a back edge, an unconnected node, long and escaped text);
    /// fixed ranks with bands (an empty rank, a rank without a band's
    /// name, an edge within a rank, one back, one to an unknown node); and
    /// nothing at all.
    fn golden_inputs() -> Vec<(&'static str, Diagram)> {
        let computed = Diagram {
            nodes: vec![
                labelled("service:api", "api", "running", "service", None),
                labelled(
                    "topic:esg-portfolio-events",
                    "esg-portfolio-events",
                    "1,234,567 records",
                    "topic",
                    None,
                ),
                labelled(
                    "group:worker",
                    "worker",
                    "lag 12 · WARN",
                    "group warn",
                    None,
                ),
                labelled(
                    "service:worker",
                    "worker <&>",
                    "restarting",
                    "service warn",
                    None,
                ),
                labelled("topic:results", "results", "", "topic", None),
                labelled("service:idle", "idle", "elsewhere", "service", None),
            ],
            edges: vec![
                rated(
                    "service:api",
                    "topic:esg-portfolio-events",
                    "12.5/s",
                    "produces",
                ),
                rated(
                    "topic:esg-portfolio-events",
                    "group:worker",
                    "11.0/s",
                    "consumed_by",
                ),
                rated("group:worker", "service:worker", "", "member_of"),
                rated("service:worker", "topic:results", "150/s", "produces"),
                rated(
                    "service:worker",
                    "topic:esg-portfolio-events",
                    "0.1/s",
                    "produces",
                ),
                rated("topic:results", "service:api", "", "produces"),
            ],
            bands: vec![],
        };
        let banded = Diagram {
            nodes: vec![
                labelled("gw", "gateway", "entry", "entry", Some(0)),
                labelled("api", "api", "", "entry", Some(0)),
                labelled(
                    "opt",
                    "a rather long component name that gets clamped",
                    "orchestration",
                    "orchestration",
                    Some(2),
                ),
                labelled("db", "db", "postgres", "data", Some(3)),
                labelled("cache", "cache", "", "data", Some(3)),
            ],
            edges: vec![
                rated("gw", "api", "", "calls"),
                rated("api", "opt", "3/s", "calls"),
                rated("opt", "db", "", "writes"),
                rated("db", "gw", "", "feeds"),
                rated("cache", "db", "", "reads"),
                rated("opt", "nowhere", "", "calls"),
            ],
            bands: vec!["entry".into(), "messaging".into(), "orchestration".into()],
        };
        vec![
            ("computed", computed),
            ("banded", banded),
            ("empty", Diagram::default()),
        ]
    }

    /// Pins every drawing of [`golden_inputs`], both directions, SVG and
    /// draw.io, to the files in `src/diagram/golden/`, byte for byte (the
    /// SVG without its style, which is the style sheet's business). After an intended change of
    /// the drawings, run with `ULTRACORE_BLESS=1` to rewrite the files, and
    /// review them.
    #[test]
    fn drawings_match_the_golden_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/diagram/golden");
        let bless = std::env::var_os("ULTRACORE_BLESS").is_some();
        let mut differ = Vec::new();
        for (name, d) in golden_inputs() {
            for (direction, dir_name) in [(Direction::TopDown, "td"), (Direction::LeftRight, "lr")]
            {
                let l = layout(&d, direction);
                for (ext, text) in [
                    ("svg", l.to_svg("golden <&>")),
                    ("drawio", l.to_drawio("golden")),
                ] {
                    let path = dir.join(format!("{name}-{dir_name}.{ext}"));
                    if bless {
                        std::fs::create_dir_all(&dir)?;
                        std::fs::write(&path, &text)?;
                    } else if std::fs::read_to_string(&path)? != text {
                        differ.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(differ.is_empty(), "drawings differ from {differ:?}");
        Ok(())
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

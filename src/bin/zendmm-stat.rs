//! zendmm-stat: runs a command with libzendmm.so preloaded and
//! `ZENDMM_STATS` pointing at a temporary file, then prints one table row
//! per request that ended (on stderr, like time(1)) and draws usage and
//! real usage over the requests as an SVG line chart.
//!
//! ```text
//! zendmm-stat [-o out.svg] [--lib path/to/libzendmm.so] -- command args...
//! ```
//!
//! The command's exit status is passed through (128 + N for signal N).
//! This program does not link zendmm: the library does the counting inside
//! the command, and the record format (`key=value` pairs, one request per
//! line) is all the two share.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str =
    "usage: zendmm-stat [-o out.svg] [--lib path/to/libzendmm.so] -- command args...\n";

/// Exit status when the library or the command cannot be found (as zendmm-run).
const NOT_FOUND: u8 = 127;
/// Exit status for a bad command line.
const BAD_USAGE: u8 = 2;

struct Options {
    svg: PathBuf,
    lib: Option<PathBuf>,
    command: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        svg: PathBuf::from("zendmm-stat.svg"),
        lib: None,
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a {
            "--" => {
                opts.command = args[i + 1..].to_vec();
                break;
            }
            "-o" | "--output" => {
                opts.svg = value(i)?.into();
                i += 1;
            }
            "--lib" => {
                opts.lib = Some(value(i)?.into());
                i += 1;
            }
            _ if a.starts_with('-') => return Err(format!("unknown option '{a}'")),
            _ => {
                opts.command = args[i..].to_vec();
                break;
            }
        }
        i += 1;
    }
    if opts.command.is_empty() {
        return Err("no command given".into());
    }
    Ok(opts)
}

/// `--lib`, else the libzendmm.so next to this program, else
/// target/release/libzendmm.so under the current directory.
fn find_library(given: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("--lib {}: no such file", p.display()))
        };
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        tried.push(dir.join("libzendmm.so"));
    }
    tried.push(PathBuf::from("target/release/libzendmm.so"));
    for p in &tried {
        if p.is_file() {
            return Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
        }
    }
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "cannot find libzendmm.so (looked for {}); pass --lib PATH",
        list.join(", ")
    ))
}

/// One `ZENDMM_STATS` record.
#[derive(Clone, Debug, Default, PartialEq)]
struct Record {
    request: u64,
    pid: u64,
    heap: u64,
    usage: u64,
    peak: u64,
    real_usage: u64,
    real_peak: u64,
    segments: u64,
    cached: u64,
    hits: u64,
    misses: u64,
}

fn parse_record(line: &str) -> Option<Record> {
    let mut r = Record::default();
    let mut seen = 0u32;
    for pair in line.split_whitespace() {
        let (key, value) = pair.split_once('=')?;
        let v: u64 = value.parse().ok()?;
        let (slot, bit) = match key {
            "request" => (&mut r.request, 0),
            "pid" => (&mut r.pid, 1),
            "heap" => (&mut r.heap, 2),
            "usage" => (&mut r.usage, 3),
            "peak" => (&mut r.peak, 4),
            "real_usage" => (&mut r.real_usage, 5),
            "real_peak" => (&mut r.real_peak, 6),
            "segments" => (&mut r.segments, 7),
            "cached" => (&mut r.cached, 8),
            "hits" => (&mut r.hits, 9),
            "misses" => (&mut r.misses, 10),
            _ => continue, // a newer library may add fields
        };
        *slot = v;
        seen |= 1 << bit;
    }
    (seen == (1 << 11) - 1).then_some(r)
}

fn table(records: &[Record]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:>5} {:>8} {:>4} {:>12} {:>12} {:>12} {:>12} {:>5} {:>9} {:>10} {:>9}",
        "req",
        "pid",
        "heap",
        "usage",
        "peak",
        "real usage",
        "real peak",
        "segs",
        "cached",
        "hits",
        "misses"
    );
    for r in records {
        let _ = writeln!(
            t,
            "{:>5} {:>8} {:>4} {:>12} {:>12} {:>12} {:>12} {:>5} {:>9} {:>10} {:>9}",
            r.request,
            r.pid,
            r.heap,
            r.usage,
            r.peak,
            r.real_usage,
            r.real_peak,
            r.segments,
            r.cached,
            r.hits,
            r.misses
        );
    }
    t
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A byte count in the unit that suits `scale`.
fn human(bytes: f64, scale: f64) -> String {
    let (div, unit) = if scale >= (1u64 << 30) as f64 {
        ((1u64 << 30) as f64, "GiB")
    } else if scale >= (1 << 20) as f64 {
        ((1 << 20) as f64, "MiB")
    } else if scale >= 1024.0 {
        (1024.0, "KiB")
    } else {
        (1.0, "B")
    };
    let v = bytes / div;
    if v == v.trunc() {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A tick step of 1, 2 or 5 times a power of ten in `max`'s unit, about
/// five ticks to the top.
fn tick_step(max: f64) -> f64 {
    let unit = [(1u64 << 30) as f64, (1 << 20) as f64, 1024.0, 1.0]
        .into_iter()
        .find(|u| max >= *u)
        .unwrap_or(1.0);
    let raw = (max / unit / 5.0).max(1e-9);
    let pow = 10f64.powf(raw.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * pow >= raw)
        .unwrap_or(10.0);
    (nice * pow * unit).max(1.0)
}

/// A line of the chart: label, colour, dash pattern, and its figure.
type Series = (&'static str, &'static str, &'static str, fn(&Record) -> u64);

/// The chart: one line per figure over the requests, in file order; the
/// peaks dashed in the colour of their figure (bench/run.py's style).
fn svg(records: &[Record], title: &str) -> String {
    let series: [Series; 4] = [
        ("usage at request end", "#0969da", "", |r| r.usage),
        ("peak usage", "#0969da", "6 4", |r| r.peak),
        ("real usage at request end", "#bc4c00", "", |r| r.real_usage),
        ("real peak", "#bc4c00", "6 4", |r| r.real_peak),
    ];
    let n = records.len();
    let (left, right, top, bottom) = (80.0, 20.0, 86.0, 46.0);
    let width = 860.0f64.max(left + right + 6.0 * n as f64);
    let (pw, ph) = (width - left - right, 300.0);
    let height = top + ph + bottom;
    let max = records
        .iter()
        .flat_map(|r| series.iter().map(move |s| (s.3)(r)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = tick_step(max);
    let ymax = (max / step).ceil() * step;
    let x = |i: usize| {
        if n == 1 {
            left + pw / 2.0
        } else {
            left + pw * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: u64| top + ph - ph * v as f64 / ymax;

    let mut el = vec![
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
        ),
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>".to_string(),
        format!(
            "<text x=\"{left}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">zendmm-stat: memory per request</text>"
        ),
        format!(
            "<text x=\"{left}\" y=\"36\" font-size=\"10\" fill=\"#57606a\">{}</text>",
            escape(title)
        ),
    ];
    let mut lx = left;
    for (label, color, dash, _) in &series {
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        el.push(format!(
            "<line x1=\"{lx}\" x2=\"{}\" y1=\"54\" y2=\"54\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>",
            lx + 22.0
        ));
        el.push(format!("<text x=\"{}\" y=\"58\">{label}</text>", lx + 26.0));
        lx += 26.0 + 6.5 * label.len() as f64 + 18.0;
    }
    let mut t = 0.0;
    while t <= ymax + 0.5 {
        let yy = top + ph - ph * t / ymax;
        el.push(format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eaeef2\"/>",
            width - right
        ));
        el.push(format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            left - 6.0,
            yy + 4.0,
            human(t, ymax)
        ));
        t += step;
    }
    el.push(format!(
        "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
        width - right,
        top + ph,
        top + ph
    ));
    // About ten request numbers along the axis.
    let every = n.div_ceil(10).max(1);
    for i in (0..n).step_by(every) {
        el.push(format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text>",
            x(i),
            top + ph + 15.0,
            i + 1
        ));
    }
    el.push(format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">request (in the order they ended)</text>",
        left + pw / 2.0,
        top + ph + 34.0
    ));
    for (label, color, dash, get) in &series {
        let points: Vec<String> = records
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.1},{:.1}", x(i), y(get(r))))
            .collect();
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        el.push(format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{label}</title></polyline>",
            points.join(" ")
        ));
        if n <= 60 {
            for (i, r) in records.iter().enumerate() {
                el.push(format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>request {} (pid {}): {label} {} bytes</title></circle>",
                    x(i),
                    y(get(r)),
                    r.request,
                    r.pid,
                    get(r)
                ));
            }
        }
    }
    el.push("</svg>".to_string());
    el.join("\n") + "\n"
}

fn temp_path() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("zendmm-stat.{}.{nanos}.log", std::process::id()))
}

fn exit_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => (128 + s) as u8,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprint!("zendmm-stat: {e}\n{USAGE}");
            return ExitCode::from(BAD_USAGE);
        }
    };
    let lib = match find_library(opts.lib) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("zendmm-stat: {e}");
            return ExitCode::from(NOT_FOUND);
        }
    };
    let log = temp_path();
    if let Err(e) = std::fs::File::create_new(&log) {
        eprintln!("zendmm-stat: cannot create {}: {e}", log.display());
        return ExitCode::from(1);
    }
    let preload = match std::env::var("LD_PRELOAD") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", lib.display()),
        _ => lib.display().to_string(),
    };
    let status = Command::new(&opts.command[0])
        .args(&opts.command[1..])
        .env("LD_PRELOAD", &preload)
        .env("ZENDMM_STATS", &log)
        .status();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let code = match status {
        Ok(s) => exit_status(s),
        Err(e) => {
            eprintln!("zendmm-stat: cannot run '{}': {e}", opts.command[0]);
            return ExitCode::from(NOT_FOUND);
        }
    };

    let records: Vec<Record> = text.lines().filter_map(parse_record).collect();
    let bad = text.lines().count() - records.len();
    let command = opts.command.join(" ");
    if records.is_empty() {
        eprintln!(
            "zendmm-stat: no request ended under zendmm in '{command}' (it never called \
             shutdown_memory_manager(), or {} was not loaded); no chart written",
            lib.display()
        );
        return ExitCode::from(code);
    }
    let mut out = format!("zendmm-stat: {} requests of '{command}'\n", records.len());
    out += &table(&records);
    if bad > 0 {
        let _ = writeln!(out, "zendmm-stat: {bad} unreadable record lines skipped");
    }
    let top = |get: fn(&Record) -> u64| records.iter().max_by_key(|r| get(r)).map(get).unwrap_or(0);
    let _ = writeln!(
        out,
        "highest peak {} bytes, highest real peak {} bytes",
        top(|r| r.peak),
        top(|r| r.real_peak)
    );
    let title = format!("{command}: {} requests", records.len());
    match std::fs::write(&opts.svg, svg(&records, &title)) {
        Ok(()) => {
            let _ = writeln!(out, "chart: {}", opts.svg.display());
        }
        Err(e) => {
            let _ = writeln!(out, "zendmm-stat: cannot write {}: {e}", opts.svg.display());
        }
    }
    eprint!("{out}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_by_key_and_need_every_field() {
        let line = "request=2 pid=9 heap=0 usage=1 peak=2 real_usage=3 real_peak=4 segments=5 \
                    cached=6 hits=7 misses=8 later=1";
        let r = parse_record(line).unwrap();
        assert_eq!((r.request, r.real_peak, r.misses), (2, 4, 8));
        assert_eq!(parse_record("request=2 pid=9"), None);
        assert_eq!(parse_record("garbage"), None);
    }

    #[test]
    fn ticks_are_round_in_their_unit() {
        assert_eq!(tick_step(13_000_000.0), 5.0 * (1 << 20) as f64);
        assert_eq!(tick_step(262_144.0), 100.0 * 1024.0);
        assert_eq!(tick_step(3.0), 1.0);
        assert_eq!(human(2.0 * (1 << 20) as f64, 1e7), "2 MiB");
    }

    #[test]
    fn arguments_need_a_command() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(a(&["-o", "x.svg"]).is_err());
        let o = a(&["-o", "x.svg", "--lib", "l.so", "--", "php", "-r", "1;"]).unwrap();
        assert_eq!(o.command, ["php", "-r", "1;"]);
        assert_eq!(o.svg, PathBuf::from("x.svg"));
        assert_eq!(a(&["php"]).unwrap().command, ["php"]);
    }
}

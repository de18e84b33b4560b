//! A headless terminal emulator that mirrors what the client sees.
//!
//! Every byte of shell output is fed to it. When a client attaches fresh
//! (its terminal is empty, e.g. a reloaded browser tab) the agent sends
//! [`Screen::repaint`] instead of replaying raw output: replaying bytes
//! into a terminal that missed their beginning garbles full-screen
//! programs, whereas a repaint is exactly the current state.
//!
//! Emulating every byte costs more CPU than the rest of the output path
//! together, yet during a flood almost all of it scrolls out of the
//! scrollback before anyone looks. So output is kept unparsed until a
//! repaint, a resize or [`PENDING_LIMIT`] bytes, and then a stretch of
//! plain text (printing characters and line breaks only) that is followed
//! by enough line breaks to push everything it wrote past the scrollback is
//! dropped unparsed: it can change nothing that a repaint shows. Escape
//! sequences are always parsed, so modes, colours, titles and the
//! alternate screen are exactly followed.

/// Unparsed output beyond which it is parsed (or skipped); bounds the
/// memory a session's mirror holds besides its scrollback.
const PENDING_LIMIT: usize = 1024 * 1024;

/// The mirrored terminal of one session.
pub struct Screen {
    parser: vt100::Parser,
    fed: bool,
    /// Output not yet given to the parser.
    pending: Vec<u8>,
    /// Whether the parser is in its ground state after what it was given.
    ground: bool,
    scrollback: usize,
    /// Output dropped unparsed, for tests and diagnostics.
    skipped: u64,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents are terminal output, which stays out of logs.
        let (rows, cols) = self.parser.screen().size();
        f.debug_struct("Screen")
            .field("rows", &rows)
            .field("cols", &cols)
            .finish_non_exhaustive()
    }
}

/// Switches the client to the alternate screen (DECSET 1049).
const ENTER_ALTERNATE_SCREEN: &[u8] = b"\x1b[?1049h";
/// Resets character attributes at the end of a scrollback line.
const END_OF_LINE: &[u8] = b"\x1b[m\r\n";

impl Screen {
    /// An empty screen of the given size keeping `scrollback` lines.
    pub fn new(cols: u16, rows: u16, scrollback: usize) -> Self {
        Self {
            parser: vt100::Parser::new(rows.max(1), cols.max(1), scrollback),
            fed: false,
            pending: Vec::new(),
            ground: true,
            scrollback,
            skipped: 0,
        }
    }

    /// Feeds shell output.
    pub fn process(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.fed = true;
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= PENDING_LIMIT {
            self.compact();
        }
    }

    /// Follows a terminal resize.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        // Output written before the resize was laid out at the old size.
        self.flush();
        self.parser.set_size(rows.max(1), cols.max(1));
    }

    /// Parses everything pending.
    fn flush(&mut self) {
        self.parser.process(&self.pending);
        self.ground = ends_in_ground(&self.pending, self.ground);
        self.pending.clear();
    }

    /// Parses pending output up to the end of its last escape sequence,
    /// skips the plain text after it that enough line breaks follow, and
    /// keeps the rest pending.
    fn compact(&mut self) {
        let rows = usize::from(self.parser.screen().size().0);
        // Whatever the skipped text left on screen or in the scrollback
        // is pushed out by the next `rows + scrollback` line breaks; the
        // further `rows` cover lines the skip left where the cursor was
        // rather than at the bottom.
        let keep_lines = 2 * rows + self.scrollback;
        match skippable(&self.pending, self.ground, keep_lines) {
            Some(skip) => {
                self.parser.process(&self.pending[..skip.start]);
                self.ground = true;
                self.skipped += skip.len() as u64;
                self.pending.drain(..skip.end);
            }
            None => self.flush(),
        }
    }

    /// Whether any output has been seen; an untouched screen needs no
    /// repaint.
    pub fn has_output(&self) -> bool {
        self.fed
    }

    /// The visible text, one line per row, for tests and diagnostics.
    pub fn contents(&mut self) -> String {
        self.flush();
        self.parser.screen().contents()
    }

    /// Bytes that bring an empty terminal of the same size to the current
    /// state: the scrollback lines (on the primary screen), then the
    /// visible cells with their colours and attributes, the cursor position
    /// and visibility, the input modes (application cursor and keypad,
    /// bracketed paste, mouse reporting) and the window title. On the
    /// alternate screen (a full-screen program) the client is switched to
    /// its own alternate screen first, so leaving the program restores a
    /// clean primary screen.
    pub fn repaint(&mut self) -> Vec<u8> {
        self.flush();
        let mut out = Vec::new();
        if self.parser.screen().alternate_screen() {
            out.extend_from_slice(ENTER_ALTERNATE_SCREEN);
        } else {
            self.write_scrollback(&mut out);
        }
        out.extend_from_slice(&self.parser.screen().state_formatted());
        out
    }

    /// Writes the scrollback lines, oldest first, each followed by a line
    /// break; the visible screen drawn afterwards pushes them up into the
    /// client's own scrollback.
    fn write_scrollback(&mut self, out: &mut Vec<u8>) {
        self.parser.set_scrollback(usize::MAX);
        let lines = self.parser.screen().scrollback();
        self.parser.set_scrollback(0);
        let (rows, cols) = self.parser.screen().size();
        let Ok(tall_rows) = u16::try_from(usize::from(rows) + lines) else {
            return;
        };
        if lines == 0 {
            return;
        }
        // The emulator shows scrollback only through its viewport, which
        // cannot scroll back further than one screen. Growing the screen
        // (blank rows are added at the bottom, nothing moves) until every
        // scrollback line fits the viewport shows them all; shrinking it
        // back removes exactly those blank rows again.
        self.parser.set_size(tall_rows, cols);
        self.parser.set_scrollback(lines);
        for row in self.parser.screen().rows_formatted(0, cols).take(lines) {
            out.extend_from_slice(&row);
            out.extend_from_slice(END_OF_LINE);
        }
        self.parser.set_scrollback(0);
        self.parser.set_size(rows, cols);
        // Make room so that clearing the screen for the visible part
        // cannot erase the last scrollback lines still on screen.
        for _ in 0..rows {
            out.extend_from_slice(b"\r\n");
        }
    }
}

const ESC: u8 = 0x1b;

/// The stretch of `bytes` that can be dropped unparsed, given whether the
/// parser is in its ground state (not inside an escape sequence or a UTF-8
/// character) before them.
///
/// It starts after the last escape sequence and ends right after a
/// `\r\n` that is followed by at least `keep_lines` further line feeds,
/// with no escape sequence anywhere after its start: such text moves the
/// cursor only down and sideways, so those line feeds scroll out whatever
/// it wrote, and ending on a carriage return and line feed leaves the
/// cursor in the first column, as parsing it would have. It may hold
/// printing characters (valid UTF-8, no C1 controls), tabs, backspaces and
/// bells, none of which changes a mode, an attribute or a character set.
fn skippable(bytes: &[u8], ground: bool, keep_lines: usize) -> Option<std::ops::Range<usize>> {
    let start = match memchr::memrchr(ESC, bytes) {
        Some(e) => sequence_end(bytes, e)?,
        None if ground => 0,
        None => return None,
    };
    let end = memchr::memrchr_iter(b'\n', &bytes[start..])
        .map(|i| start + i)
        .enumerate()
        .find(|&(feeds, i)| feeds >= keep_lines && i > start && bytes[i - 1] == b'\r')
        .map(|(_, i)| i + 1)?;
    let text = &bytes[start..end];
    // Valid UTF-8 with no C1 control (U+0080..U+009F, encoded C2 80..C2 9F).
    std::str::from_utf8(text).ok()?;
    let c1 = memchr::memchr_iter(0xc2, text).any(|i| text.get(i + 1).is_some_and(|b| *b < 0xa0));
    let plain = !c1 && text.iter().all(|&b| is_plain_byte(b));
    plain.then_some(start..end)
}

/// Bytes allowed in skipped text besides printing characters: carriage
/// return, line feed, tab, backspace and bell.
fn is_plain_byte(b: u8) -> bool {
    b >= 0x20 && b != 0x7f || matches!(b, b'\r' | b'\n' | b'\t' | 0x08 | 0x07)
}

/// Where the escape sequence starting at `bytes[esc]` ends, or `None` if
/// it does not end within `bytes` (or is a device-control or private
/// string, which only another escape can end).
fn sequence_end(bytes: &[u8], esc: usize) -> Option<usize> {
    let rest = bytes.get(esc + 1..)?;
    let (kind, body) = rest.split_first()?;
    let offset = esc + 2;
    let found = match kind {
        // CSI: parameters and intermediates, then a final byte.
        b'[' => body.iter().position(|b| (0x40..=0x7e).contains(b)),
        // OSC: up to BEL (its other terminator, ST, is an escape).
        b']' => body.iter().position(|&b| b == 0x07),
        b'P' | b'X' | b'^' | b'_' => None,
        // Other escapes: intermediates, then a final byte.
        b if (0x30..=0x7e).contains(b) => return Some(esc + 2),
        _ => body.iter().position(|b| (0x30..=0x7e).contains(b)),
    };
    found.map(|i| offset + i + 1)
}

/// Whether the parser is back in its ground state after `bytes`, given
/// whether it was before them: the last escape sequence is complete and no
/// UTF-8 character is cut off at the end.
fn ends_in_ground(bytes: &[u8], ground: bool) -> bool {
    let sequences_done = match memchr::memrchr(ESC, bytes) {
        Some(e) => sequence_end(bytes, e).is_some(),
        None => ground,
    };
    sequences_done && bytes.last().is_none_or(|&b| b < 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(bytes: &[u8], cols: u16, rows: u16) -> vt100::Parser {
        let mut p = vt100::Parser::new(rows, cols, 100);
        p.process(bytes);
        p
    }

    #[test]
    fn repaint_reproduces_contents_cursor_and_modes() {
        let mut s = Screen::new(40, 5, 100);
        assert!(!s.has_output());
        s.process(b"\x1b[31mred\x1b[m plain\r\nsecond line\x1b[?1h\x1b[?2004h");
        s.process(b"\x1b[3;7H");
        let out = s.repaint();
        let client = replay(&out, 40, 5);
        let (a, b) = (client.screen(), s.parser.screen());
        assert_eq!(a.contents(), b.contents());
        assert_eq!(a.cursor_position(), (2, 6));
        assert!(a.application_cursor());
        assert!(a.bracketed_paste());
        assert_eq!(
            a.cell(0, 0).map(|c| c.fgcolor()),
            Some(vt100::Color::Idx(1))
        );
    }

    #[test]
    fn repaint_includes_scrollback() {
        let mut s = Screen::new(20, 3, 100);
        for i in 0..10 {
            s.process(format!("line {i}\r\n").as_bytes());
        }
        let out = s.repaint();
        let client = replay(&out, 20, 3);
        assert_eq!(client.screen().contents(), s.contents());
        let before = s.contents();
        assert_eq!(s.repaint(), out, "repainting changes nothing");
        assert_eq!(s.contents(), before);
        let text = String::from_utf8_lossy(&out);
        for i in 0..8 {
            assert!(text.contains(&format!("line {i}")), "line {i} missing");
        }
    }

    #[test]
    fn alternate_screen_is_restored() {
        let mut s = Screen::new(20, 4, 100);
        s.process(b"shell prompt\r\n\x1b[?1049h\x1b[Hfull screen app");
        let out = s.repaint();
        let client = replay(&out, 20, 4);
        assert!(client.screen().alternate_screen());
        assert!(client.screen().contents().contains("full screen app"));
        assert!(!client.screen().contents().contains("shell prompt"));
    }

    /// A screen of the same size that was given every byte as it came.
    fn eager(bytes: &[u8], cols: u16, rows: u16, scrollback: usize) -> Screen {
        let mut parser = vt100::Parser::new(rows, cols, scrollback);
        parser.process(bytes);
        Screen {
            parser,
            fed: true,
            pending: Vec::new(),
            ground: true,
            scrollback,
            skipped: 0,
        }
    }

    /// A deterministic mix of what shells print: plain lines (some longer
    /// than the screen), colours, cursor moves, tabs, UTF-8 (some wide),
    /// titles, mode switches, the alternate screen and back, floods.
    fn shell_output(seed: u64, lines: usize) -> Vec<u8> {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::new();
        for n in 0..lines {
            let r = next() % 1000;
            if r == 0 {
                // A flood, long enough to be skipped in part.
                for k in 0..next() % 3000 {
                    out.extend_from_slice(format!("flood {k}\r\n").as_bytes());
                }
            }
            match r {
                0..=949 => out.extend_from_slice(format!("line {n} plain text\r\n").as_bytes()),
                950..=964 => out.extend_from_slice(
                    format!("\x1b[1;3{}mcolour {n}\x1b[m\tand tab\r\n", r % 8).as_bytes(),
                ),
                965..=974 => out.extend_from_slice("ünïcödé 日本語 wide\r\n".as_bytes()),
                975..=979 => {
                    out.extend_from_slice(format!("{}\r\n", "long ".repeat(40)).as_bytes())
                }
                980..=984 => out.extend_from_slice(format!("\x1b]0;title {n}\x07").as_bytes()),
                985..=989 => out.extend_from_slice(b"\x1b[5;3Hmoved\x1b[?2004h\x1b[K"),
                990..=994 => out.extend_from_slice(b"back\x08\x08space\x07\r\n"),
                995..=997 => out.extend_from_slice(b"\x1b[?1049h\x1b[Hin the alternate screen\r\n"),
                _ => out.extend_from_slice(b"\x1b[?1049lprompt$ "),
            }
        }
        out
    }

    #[test]
    fn lazy_mirror_repaints_exactly_like_an_eager_one() {
        let mut skipped = 0;
        for seed in 1..=4u64 {
            let bytes = shell_output(seed, 120_000);
            let (cols, rows, scrollback) = (80, 24, 200);
            let mut lazy = Screen::new(cols, rows, scrollback);
            let mut reference = eager(b"", cols, rows, scrollback);
            // Odd chunk sizes cut escapes and UTF-8 characters apart.
            let sizes = [4093, 1, 16384, 7, 65521, 3];
            let mut at = 0;
            for size in sizes.iter().cycle() {
                if at >= bytes.len() {
                    break;
                }
                let end = (at + size).min(bytes.len());
                let before = lazy.skipped;
                lazy.process(&bytes[at..end]);
                reference.parser.process(&bytes[at..end]);
                at = end;
                // Right after a skip is when a repaint could miss what the
                // skipped text left behind.
                if lazy.skipped > before {
                    skipped += lazy.skipped - before;
                    assert_eq!(lazy.repaint(), reference.repaint(), "seed {seed} at {at}");
                }
            }
            assert_eq!(lazy.repaint(), reference.repaint(), "seed {seed}");
            assert_eq!(lazy.contents(), reference.contents(), "seed {seed}");
        }
        assert!(skipped > 0, "the floods were skipped in part");
    }

    #[test]
    fn a_plain_flood_is_mostly_skipped() {
        let line = b"seashell-data-channel-benchmark-0123456789abcdefghijklmnopqrstu\r\n";
        let mut flood = b"\x1b[1;32muser@host\x1b[m$ \x1b]0;cat\x07cat big\r\n".to_vec();
        while flood.len() < 3 * PENDING_LIMIT {
            flood.extend_from_slice(line);
        }
        let mut lazy = Screen::new(80, 24, 1000);
        let mut parsed = 0;
        for chunk in flood.chunks(16 * 1024) {
            let before = lazy.pending.len();
            lazy.process(chunk);
            if lazy.pending.len() < before + chunk.len() {
                parsed += 1;
            }
        }
        assert!(parsed >= 2, "the pending output was compacted");
        assert!(
            lazy.skipped > 2 * PENDING_LIMIT as u64 * 8 / 10,
            "{}",
            lazy.skipped
        );
        let skip = skippable(&flood, true, 2 * 24 + 1000).expect("a plain flood is skippable");
        assert!(
            skip.len() > flood.len() * 9 / 10,
            "{skip:?} of {}",
            flood.len()
        );
        let mut reference = eager(&flood, 80, 24, 1000);
        assert_eq!(lazy.repaint(), reference.repaint());
    }

    #[test]
    fn nothing_is_skipped_inside_a_sequence_or_string() {
        let lines = b"text\r\n".repeat(100);
        // An unterminated CSI, device-control string and title.
        for open in [&b"\x1b[1;3"[..], b"\x1bPq", b"\x1b]0;title"] {
            let mut bytes = open.to_vec();
            bytes.extend_from_slice(&lines);
            if open.starts_with(b"\x1b[") {
                // The CSI ends at the first letter, after which text is plain.
                let skip = skippable(&bytes, true, 10).expect("skippable after the final byte");
                assert_eq!(skip.start, open.len() + 1);
            } else {
                assert_eq!(skippable(&bytes, true, 10), None);
            }
        }
        // No escape at all, but the parser may be inside one already.
        assert_eq!(skippable(&lines, false, 10), None);
        assert!(skippable(&lines, true, 10).is_some());
        // Shift-out changes the character set: never skipped over.
        let mut shifted = lines.clone();
        shifted.insert(10, 0x0e);
        assert!(skippable(&shifted, true, 10).is_none_or(|r| r.start > 10 || r.end <= 10));
        // Too few line feeds after the text: kept.
        assert_eq!(skippable(b"a\r\nb\r\nc\r\n", true, 10), None);
        assert!(ends_in_ground(b"\x1b[31mred", false));
        assert!(!ends_in_ground(b"\x1b[31", true));
        assert!(!ends_in_ground("caf\u{e9}".as_bytes()[..4].as_ref(), true));
    }
}

//! A headless terminal emulator that mirrors what the client sees.
//!
//! Every byte of shell output is fed to it. When a client attaches fresh
//! (its terminal is empty, e.g. a reloaded browser tab) the agent sends
//! [`Screen::repaint`] instead of replaying raw output: replaying bytes
//! into a terminal that missed their beginning garbles full-screen
//! programs, whereas a repaint is exactly the current state.

/// The mirrored terminal of one session.
pub struct Screen {
    parser: vt100::Parser,
    fed: bool,
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
        }
    }

    /// Feeds shell output.
    pub fn process(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.fed = true;
        }
        self.parser.process(bytes);
    }

    /// Follows a terminal resize.
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self.parser.set_size(rows.max(1), cols.max(1));
    }

    /// Whether any output has been seen; an untouched screen needs no
    /// repaint.
    pub fn has_output(&self) -> bool {
        self.fed
    }

    /// The visible text, one line per row, for tests and diagnostics.
    pub fn contents(&self) -> String {
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
}

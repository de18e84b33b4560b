//! A small XML writer for AWS Query protocol replies.

use quick_xml::escape::escape;

/// Builds an XML document element by element.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// A document starting with the XML declaration.
    pub fn new() -> XmlWriter {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// Opens `<name>` (with an `xmlns` when given).
    pub fn open(&mut self, name: &str, xmlns: Option<&str>) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        if let Some(ns) = xmlns {
            self.out.push_str(" xmlns=\"");
            self.out.push_str(&escape(ns));
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>`, with the text escaped.
    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, None);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    /// The document.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut w = XmlWriter::new();
        w.open("A", Some("urn:x")).element("B", "<&\"'>").close("A");
        assert!(w
            .finish()
            .ends_with("<A xmlns=\"urn:x\"><B>&lt;&amp;&quot;&apos;&gt;</B></A>"));
    }
}

#include "tools/svg_writer.h"

#include <cmath>
#include <cstdio>

namespace uffdlazy::svg {

Document::Document(double width, double height) : width_(width), height_(height) {}

std::string Document::num(double v) {
  if (std::fabs(v) < 5e-3) v = 0;  // no "-0"
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  std::string s = b;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string Document::escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += '?';
        else out += c;
    }
  }
  return out;
}

std::string Document::style_attrs(const Style& s) {
  std::string a = " stroke=\"" + s.stroke + "\" fill=\"" + s.fill + "\"";
  if (s.stroke != "none") a += " stroke-width=\"" + num(s.stroke_width) + "\"";
  if (!s.dash.empty()) a += " stroke-dasharray=\"" + s.dash + "\"";
  if (s.opacity < 1) a += " opacity=\"" + num(s.opacity) + "\"";
  return a;
}

void Document::rect(double x, double y, double w, double h, const Style& s) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) + "\"" +
           style_attrs(s) + "/>\n";
}

void Document::line(double x1, double y1, double x2, double y2, const Style& s) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\"" +
           style_attrs(s) + "/>\n";
}

void Document::polyline(const std::vector<std::pair<double, double>>& pts, const Style& s) {
  if (pts.empty()) return;
  body_ += "<polyline points=\"";
  for (size_t i = 0; i < pts.size(); i++) {
    if (i) body_ += ' ';
    body_ += num(pts[i].first) + "," + num(pts[i].second);
  }
  body_ += "\"" + style_attrs(s) + " stroke-linejoin=\"round\"/>\n";
}

void Document::circle(double cx, double cy, double r, const Style& s) {
  body_ += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\"" + style_attrs(s) + "/>\n";
}

void Document::text(double x, double y, const std::string& t, const TextStyle& s) {
  static const char* anchors[] = {"start", "middle", "end"};
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(s.size) + "\" fill=\"" + s.fill +
           "\" text-anchor=\"" + anchors[int(s.anchor)] + "\"";
  if (s.bold) body_ += " font-weight=\"bold\"";
  if (s.rotate != 0) body_ += " transform=\"rotate(" + num(s.rotate) + " " + num(x) + " " + num(y) + ")\"";
  body_ += ">" + escape(t) + "</text>\n";
}

void Document::comment(const std::string& c) {
  std::string safe;
  for (char ch : c) safe += ch == '-' ? '_' : ch;  // "--" may not appear in a comment
  body_ += "<!-- " + safe + " -->\n";
}

void Document::begin_group(const std::string& id) { body_ += "<g id=\"" + escape(id) + "\">\n"; }
void Document::end_group() { body_ += "</g>\n"; }

std::string Document::str() const {
  std::string w = num(width_), h = num(height_);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
         " " + h + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" +
         "<rect x=\"0\" y=\"0\" width=\"" + w + "\" height=\"" + h + "\" fill=\"#ffffff\"/>\n" + body_ + "</svg>\n";
}

}  // namespace uffdlazy::svg

// A minimal SVG document builder: just the primitives the report plot draws, with text escaped
// and coordinates printed compactly.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace uffdlazy::svg {

struct Style {
  std::string stroke = "none";
  double stroke_width = 1;
  std::string fill = "none";
  std::string dash;      // stroke-dasharray, empty for solid
  double opacity = 1;
};

enum class Anchor { kStart, kMiddle, kEnd };

struct TextStyle {
  double size = 12;
  Anchor anchor = Anchor::kStart;
  std::string fill = "#333";
  bool bold = false;
  double rotate = 0;  // degrees, around the text's anchor point
};

class Document {
 public:
  Document(double width, double height);

  void rect(double x, double y, double w, double h, const Style& s);
  void line(double x1, double y1, double x2, double y2, const Style& s);
  void polyline(const std::vector<std::pair<double, double>>& pts, const Style& s);
  void circle(double cx, double cy, double r, const Style& s);
  void text(double x, double y, const std::string& t, const TextStyle& s);
  void comment(const std::string& c);
  // Groups mark the panels and the series (and let tests find them): <g id="...">.
  void begin_group(const std::string& id);
  void end_group();

  std::string str() const;

 private:
  static std::string num(double v);
  static std::string escape(const std::string& s);
  static std::string style_attrs(const Style& s);

  double width_, height_;
  std::string body_;
};

}  // namespace uffdlazy::svg

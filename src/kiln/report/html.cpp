#include "kiln/report/html.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/report/stats.h"

namespace kiln {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::string base64(const void* data, size_t size) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    for (int k = 3; k >= 0; --k) out += abc[(v >> (6 * k)) & 63];
  }
  if (size - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += "==";
  } else if (size - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

std::string text_of(const std::string& path) {
  auto b = read_file(path);
  return std::string(b.begin(), b.end());
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, int prec = 4) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s.precision(prec);
  s << v;
  return s.str();
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  if (!file_exists(path)) return out;
  std::istringstream in(text_of(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// A CSV with a header row: columns by name.
std::map<std::string, std::vector<double>> read_csv(const std::string& path) {
  std::map<std::string, std::vector<double>> cols;
  std::istringstream in(text_of(path));
  std::string line, cell;
  std::vector<std::string> names;
  if (std::getline(in, line)) {
    std::istringstream h(line);
    while (std::getline(h, cell, ',')) names.push_back(cell);
  }
  while (std::getline(in, line)) {
    std::istringstream r(line);
    for (size_t k = 0; k < names.size() && std::getline(r, cell, ','); ++k) cols[names[k]].push_back(std::stod(cell));
  }
  return cols;
}

json series(const std::string& name, const std::vector<double>& x, const std::vector<double>& y, const std::string& color,
            bool dots = false) {
  return json{{"name", name}, {"x", x}, {"y", y}, {"color", color}, {"dots", dots}};
}

json chart(const std::string& id, const std::string& title, const std::string& xlabel, const std::string& ylabel,
           std::vector<json> s, bool logx = false, double vline = -1) {
  json c{{"id", id}, {"title", title}, {"xlabel", xlabel}, {"ylabel", ylabel}, {"logx", logx}, {"series", s}};
  if (vline > 0) c["vline"] = vline;
  return c;
}

std::vector<double> col(const std::vector<json>& rows, const char* key, bool only_evaluated = false) {
  std::vector<double> v;
  for (auto& r : rows)
    if (!only_evaluated || r.contains("test_acc")) v.push_back(r.value(key, std::nan("")));
  return v;
}

struct Page {
  std::string body;
  json charts = json::array();
  void h2(const std::string& t) { body += "<h2>" + esc(t) + "</h2>\n"; }
  void div_for(const json& c) {
    charts.push_back(c);
    body += "<div class=\"chart\" id=\"" + c["id"].get<std::string>() + "\"></div>\n";
  }
  void pre(const std::string& title, const std::string& text) {
    body += "<details open><summary>" + esc(title) + "</summary><pre>" + esc(text) + "</pre></details>\n";
  }
};

// per_class.csv (class,images,correct,accuracy; a name may be quoted) as a table, the
// weakest classes first.
void per_class_table(const std::string& file, Page& p) {
  std::istringstream in(text_of(file));
  std::string line;
  std::getline(in, line);  // header
  struct Row { std::string name; long long n = 0, right = 0; double acc = -1; };
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    Row r;
    size_t i = 0;
    if (line[0] == '"') {  // RFC 4180: "" is a quote inside a quoted field
      for (i = 1; i < line.size(); ++i) {
        if (line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') r.name += '"', ++i;
        else if (line[i] == '"') break;
        else r.name += line[i];
      }
      i += 2;  // the closing quote and the comma
    } else {
      i = line.find(',');
      r.name = line.substr(0, i);
      ++i;
    }
    std::vector<std::string> f;
    std::istringstream rest(i <= line.size() ? line.substr(i) : "");
    for (std::string x; std::getline(rest, x, ',');) f.push_back(x);
    if (f.size() < 2) continue;
    r.n = std::stoll(f[0]), r.right = std::stoll(f[1]);
    if (f.size() > 2 && !f[2].empty()) r.acc = std::stod(f[2]);
    rows.push_back(r);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.acc < b.acc; });
  std::string t = "<table class=\"grid\"><tr><th>class</th><th>test images</th><th>correct</th><th>accuracy %</th></tr>\n";
  for (auto& r : rows)
    t += "<tr><td>" + esc(r.name) + "</td><td>" + std::to_string(r.n) + "</td><td>" + std::to_string(r.right) + "</td><td>" +
         (r.acc < 0 ? std::string("") : num(100 * r.acc, 4)) + "</td></tr>\n";
  p.body += "<details open><summary>Per-class test accuracy, weakest first (per_class.csv)</summary>" + t + "</table></details>\n";
}

// final.json's or summary.json's "warnings" (what the run said at its start), one line each.
void warnings_of(const json& j, Page& p) {
  if (!j.contains("warnings") || !j["warnings"].is_array()) return;
  for (const auto& w : j["warnings"])
    if (w.is_string()) p.body += "<p class=\"warning\">Warning: " + esc(w.get<std::string>()) + "</p>\n";
}

void run_section(const std::string& dir, Page& p) {
  auto epochs = read_jsonl(dir + "/metrics.jsonl");
  bool done = file_exists(dir + "/final.json");
  std::string status = done ? "complete" : (file_exists(dir + "/checkpoint.pt") ? "interrupted or running (resume with kiln train --resume " + dir + ")" : "no checkpoint");
  p.body += "<p class=\"status\">Run: " + esc(status) + "; " + std::to_string(epochs.size()) + " epoch(s) recorded.</p>\n";
  if (done) {
    auto f = json::parse(text_of(dir + "/final.json"));
    p.body += "<table class=\"kv\"><tr><th>final test accuracy</th><td>" + num(100 * f.value("final_test_acc", 0.0), 4) +
              " % (n=1)</td></tr><tr><th>final test loss</th><td>" + num(f.value("final_test_loss", 0.0)) +
              "</td></tr><tr><th>training time</th><td>" + num(f.value("train_seconds", 0.0)) +
              " s (training steps only; evaluation, data loading and checkpoints excluded)</td></tr><tr><th>parameters</th><td>" +
              std::to_string(f.value("parameters", int64_t{0})) + "</td></tr></table>\n";
    warnings_of(f, p);
  }
  if (file_exists(dir + "/per_class.csv")) per_class_table(dir + "/per_class.csv", p);
  if (epochs.empty()) return;
  auto ep = col(epochs, "epoch");
  std::vector<double> ev_ep, test_acc, test_loss;
  for (auto& e : epochs)
    if (e.contains("test_acc")) {
      ev_ep.push_back(e["epoch"].get<double>());
      test_acc.push_back(100 * e["test_acc"].get<double>());
      test_loss.push_back(e["test_loss"].get<double>());
    }
  auto train_acc = col(epochs, "train_acc");
  for (auto& v : train_acc) v *= 100;
  p.h2("Training curves");
  if (file_exists(dir + "/steps.csv")) {
    auto s = read_csv(dir + "/steps.csv");
    if (!s["step"].empty()) {
      p.div_for(chart("loss_steps", "Training loss per step", "step", "loss (per example)",
                      {series("train loss", s["step"], s["loss"], "#1f5fbf")}));
      p.div_for(chart("lr_steps", "Learning rate per step", "step", "lr (optim.lr units)",
                      {series("lr", s["step"], s["lr"], "#b8560f")}));
    }
  }
  p.div_for(chart("loss_epochs", "Loss per epoch", "epoch", "loss",
                  {series("train (as optimised)", ep, col(epochs, "train_loss"), "#1f5fbf", true),
                   series("test (cross-entropy)", ev_ep, test_loss, "#c0392b", true)}));
  p.div_for(chart("acc_epochs", "Accuracy per epoch", "epoch", "accuracy (%)",
                  {series("train (augmented batches)", ep, train_acc, "#1f5fbf", true),
                   series("test", ev_ep, test_acc, "#c0392b", true)}));
  p.div_for(chart("lr_epochs", "Learning rate at each epoch's last step", "epoch", "lr",
                  {series("lr", ep, col(epochs, "lr"), "#b8560f", true)}));
  p.div_for(chart("speed_epochs", "Throughput", "epoch", "training images/s",
                  {series("images/s", ep, col(epochs, "images_per_s"), "#2e8b57", true)}));
  auto bytes = col(epochs, "live_bytes");
  for (auto& b : bytes) b /= 1 << 20;
  p.div_for(chart("leak_epochs", "Leak watch: live memory after each epoch (should stay flat)", "epoch", "MiB",
                  {series("live MiB", ep, bytes, "#6a3d9a", true)}));
  std::string t = "<table class=\"grid\"><tr><th>epoch</th><th>train loss</th><th>train acc %</th><th>test loss</th>"
                  "<th>test acc %</th><th>lr</th><th>epoch s</th><th>eval s</th><th>img/s</th><th>live allocs</th><th>live MiB</th></tr>\n";
  for (auto& e : epochs) {
    bool ev = e.contains("test_acc");
    t += "<tr><td>" + std::to_string(e.value("epoch", 0)) + "</td><td>" + num(e.value("train_loss", 0.0)) + "</td><td>" +
         num(100 * e.value("train_acc", 0.0)) + "</td><td>" + (ev ? num(e["test_loss"].get<double>()) : "") + "</td><td>" +
         (ev ? num(100 * e["test_acc"].get<double>()) : "") + "</td><td>" + num(e.value("lr", 0.0), 3) + "</td><td>" +
         num(e.value("epoch_seconds", 0.0), 3) + "</td><td>" + num(e.value("eval_seconds", 0.0), 3) + "</td><td>" +
         num(e.value("images_per_s", 0.0), 4) + "</td><td>" + std::to_string(e.value("live_allocations", int64_t{0})) +
         "</td><td>" + num(e.value("live_bytes", 0.0) / (1 << 20), 4) + "</td></tr>\n";
  }
  p.body += "<details open><summary>Epochs (metrics.jsonl)</summary>" + t + "</table></details>\n";
}

void set_section(const std::string& dir, Page& p) {
  auto s = json::parse(text_of(dir + "/summary.json"));
  p.h2("Statistics over " + std::to_string(s.value("runs", 0)) + " runs");
  std::string t = "<table class=\"grid\"><tr><th>metric</th><th>n</th><th>mean</th><th>std</th><th>95% CI</th><th>min</th><th>max</th></tr>\n";
  auto row = [&](const std::string& name, const json& m, double scale) {
    t += "<tr><td>" + esc(name) + "</td><td>" + std::to_string(m.value("n", 0)) + "</td><td>" +
         num(scale * m.value("mean", 0.0), 5) + "</td><td>" + num(scale * m.value("std", 0.0), 3) + "</td><td>" +
         num(scale * m.value("ci95_low", 0.0), 5) + " – " + num(scale * m.value("ci95_high", 0.0), 5) + "</td><td>" +
         num(scale * m.value("min", 0.0), 5) + "</td><td>" + num(scale * m.value("max", 0.0), 5) + "</td></tr>\n";
  };
  if (s.contains("final_test_acc")) row("final test accuracy (%)", s["final_test_acc"], 100);
  if (s.contains("train_seconds")) row("training time (s)", s["train_seconds"], 1);
  p.body += t + "</table>\n<p>Device: " + esc(s.value("device_name", std::string("?"))) + " (" +
            esc(s.value("device", std::string("?"))) + "). Time: " + esc(s.value("train_seconds_includes", std::string(""))) +
            ". The interval is mean ± t(0.975, n−1)·s/√n.</p>\n";
  warnings_of(s, p);
  std::vector<json> acc_series;
  std::string runs = "<table class=\"grid\"><tr><th>run</th><th>final test acc %</th><th>train s</th></tr>\n";
  static const char* palette[] = {"#1f5fbf", "#c0392b", "#2e8b57", "#b8560f", "#6a3d9a", "#17becf", "#7f7f7f", "#bcbd22"};
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("run-", 0) == 0) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (size_t k = 0; k < names.size(); ++k) {
    auto rd = dir + "/" + names[k];
    auto epochs = read_jsonl(rd + "/metrics.jsonl");
    std::vector<double> x, y;
    for (auto& e : epochs)
      if (e.contains("test_acc")) x.push_back(e["epoch"].get<double>()), y.push_back(100 * e["test_acc"].get<double>());
    acc_series.push_back(series(names[k], x, y, palette[k % 8], true));
    std::string acc = "", secs = "";
    if (file_exists(rd + "/final.json")) {
      auto f = json::parse(text_of(rd + "/final.json"));
      acc = num(100 * f.value("final_test_acc", 0.0), 5);
      secs = num(f.value("train_seconds", 0.0), 4);
    }
    runs += "<tr><td><a href=\"" + esc(names[k]) + "/report.html\">" + esc(names[k]) + "</a></td><td>" + acc + "</td><td>" +
            secs + "</td></tr>\n";
  }
  if (!acc_series.empty()) p.div_for(chart("set_acc", "Test accuracy of every run", "epoch", "accuracy (%)", acc_series));
  p.body += "<details open><summary>Runs</summary>" + runs + "</table></details>\n";
}

void lr_find_section(const std::string& dir, Page& p) {
  auto c = read_csv(dir + "/lr_find.csv");
  double suggestion = -1;
  if (file_exists(dir + "/lr_find.json")) suggestion = json::parse(text_of(dir + "/lr_find.json")).value("suggested_lr", -1.0);
  p.h2("LR finder");
  if (suggestion > 0) p.body += "<p>Suggested optim.lr = " + num(suggestion, 3) + " (steepest descent of the smoothed loss; vertical line).</p>\n";
  // One spike must not flatten the plot: raw losses are clipped to 1.1x the smoothed curve's top.
  double top = c["smoothed"].empty() ? 0 : *std::max_element(c["smoothed"].begin(), c["smoothed"].end()) * 1.1;
  auto raw = c["loss"];
  for (auto& v : raw) v = std::min(v, top);
  p.div_for(chart("lr_find", "Loss against learning rate", "lr (log scale)", "loss (per example)",
                  {series("loss (clipped)", c["lr"], raw, "#9fa8da"), series("smoothed", c["lr"], c["smoothed"], "#1f5fbf")},
                  true, suggestion));
}

const char* kStyle = R"CSS(
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.chart{display:inline-block;margin:6px;border:1px solid #e4e4e4;border-radius:4px;vertical-align:top}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;max-height:480px}
table.grid{border-collapse:collapse;font-size:13px} table.grid td,table.grid th{border:1px solid #ddd;padding:2px 8px;text-align:right}
table.kv th{text-align:left;padding-right:16px;font-weight:600} details{margin:12px 0} summary{cursor:pointer;font-weight:600}
figure{display:inline-block;margin:8px;vertical-align:top} figure img{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
.status{color:#555}
.warning{color:#a00;font-weight:bold}
)CSS";

// Draws every chart in DATA.charts as an SVG: axes with round ticks, a line per series (and
// dots when asked), a legend, an optional vertical marker. Marks <body> with the count.
const char* kScript = R"JS(
(function(){
var errors=0;
function mark(){document.body.setAttribute('data-errors',String(errors));}
window.addEventListener('error',function(){errors++;mark();});
var cerr=console.error;console.error=function(){errors++;mark();cerr.apply(console,arguments);};
var NS='http://www.w3.org/2000/svg';
function el(tag,attrs,parent,text){var e=document.createElementNS(NS,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;if(parent)parent.appendChild(e);return e;}
function ticks(a,b,n){if(!(b>a)){a-=1;b+=1;}var raw=(b-a)/n,mag=Math.pow(10,Math.floor(Math.log10(raw))),f=raw/mag;
 var step=(f<1.5?1:f<3?2:f<7?5:10)*mag,out=[];for(var v=Math.ceil(a/step)*step;v<=b+step*1e-9;v+=step)out.push(Math.abs(v)<step*1e-9?0:v);return out;}
function fmt(v){var a=Math.abs(v);if(a===0)return '0';if(a>=1e4||a<1e-3)return v.toExponential(1);return String(+v.toPrecision(4));}
function draw(c){
 var host=document.getElementById(c.id);var W=640,H=320,L=64,R=16,T=30,B=44;
 var tx=c.logx?function(v){return Math.log10(v);}:function(v){return v;};
 var xs=[],ys=[];c.series.forEach(function(s){for(var i=0;i<s.x.length;i++){var x=s.x[i],y=s.y[i];
   if(y===null||x===null||!isFinite(x)||!isFinite(y)||(c.logx&&!(x>0)))continue;xs.push(tx(x));ys.push(y);}});
 var svg=el('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,'class':'plot'},host);
 el('text',{x:L,y:18,'font-size':14,'font-weight':600},svg,c.title);
 if(!xs.length){el('text',{x:W/2,y:H/2,'text-anchor':'middle',fill:'#888'},svg,'no data yet');return 0;}
 var x0=Math.min.apply(null,xs),x1=Math.max.apply(null,xs),y0=Math.min.apply(null,ys),y1=Math.max.apply(null,ys);
 if(x1===x0){x0-=0.5;x1+=0.5;} if(y1===y0){y0-=Math.abs(y0)*0.05+1e-9;y1+=Math.abs(y1)*0.05+1e-9;}
 var pad=(y1-y0)*0.05;y0-=pad;y1+=pad;
 function px(v){return L+(tx(v)-x0)/(x1-x0)*(W-L-R);} function py(v){return H-B-(v-y0)/(y1-y0)*(H-T-B);}
 ticks(y0,y1,5).forEach(function(v){if(v<y0||v>y1)return;el('line',{x1:L,x2:W-R,y1:py(v),y2:py(v),stroke:'#eee'},svg);
   el('text',{x:L-6,y:py(v)+4,'text-anchor':'end','font-size':11},svg,fmt(v));});
 var xt=c.logx?(function(){var o=[];for(var d=Math.ceil(x0);d<=Math.floor(x1);d++)o.push(Math.pow(10,d));return o;})():ticks(x0,x1,6);
 xt.forEach(function(v){var X=px(v);if(X<L-1||X>W-R+1)return;el('line',{x1:X,x2:X,y1:T,y2:H-B,stroke:'#eee'},svg);
   el('text',{x:X,y:H-B+16,'text-anchor':'middle','font-size':11},svg,fmt(v));});
 el('line',{x1:L,x2:L,y1:T,y2:H-B,stroke:'#444'},svg);el('line',{x1:L,x2:W-R,y1:H-B,y2:H-B,stroke:'#444'},svg);
 el('text',{x:(L+W-R)/2,y:H-8,'text-anchor':'middle','font-size':12},svg,c.xlabel);
 el('text',{x:14,y:(T+H-B)/2,'text-anchor':'middle','font-size':12,transform:'rotate(-90 14 '+(T+H-B)/2+')'},svg,c.ylabel);
 if(c.vline)el('line',{x1:px(c.vline),x2:px(c.vline),y1:T,y2:H-B,stroke:'#d62728','stroke-dasharray':'4 3'},svg);
 var lines=0;
 c.series.forEach(function(s,k){var d='';for(var i=0;i<s.x.length;i++){var x=s.x[i],y=s.y[i];
   if(y===null||x===null||!isFinite(x)||!isFinite(y)||(c.logx&&!(x>0)))continue;d+=(d?'L':'M')+px(x).toFixed(1)+' '+py(y).toFixed(1);
   if(s.dots)el('circle',{cx:px(x),cy:py(y),r:2.5,fill:s.color},svg);}
   if(d){el('path',{d:d,fill:'none',stroke:s.color,'stroke-width':1.6,'class':'series'},svg);lines++;}
   el('rect',{x:W-R-150,y:T+4+k*16,width:10,height:10,fill:s.color},svg);
   el('text',{x:W-R-135,y:T+13+k*16,'font-size':11},svg,s.name);});
 return lines>0?1:0;}
document.addEventListener('DOMContentLoaded',function(){
 mark();var data=JSON.parse(document.getElementById('kiln-data').textContent),n=0;
 data.charts.forEach(function(c){try{n+=draw(c);}catch(e){errors++;cerr.call(console,e);}});
 document.body.setAttribute('data-charts',String(n));document.body.setAttribute('data-charts-expected',String(data.charts.length));mark();});
})();
)JS";

}  // namespace

std::string write_report(const std::string& dir) {
  if (!dir_exists(dir)) throw Error("kiln report: no directory '" + dir + "'");
  Page p;
  std::string title = fs::path(dir).filename().string();
  std::string config = file_exists(dir + "/config.toml") ? text_of(dir + "/config.toml") : "";
  std::string description;
  {
    std::istringstream in(config);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("description = ", 0) == 0) description = line.substr(14);
  }
  if (description.size() >= 2 && (description.front() == '"' || description.front() == '\'')) description = description.substr(1, description.size() - 2);
  bool any = false;
  if (file_exists(dir + "/summary.json")) set_section(dir, p), any = true;
  if (file_exists(dir + "/metrics.jsonl")) run_section(dir, p), any = true;
  if (file_exists(dir + "/lr_find.csv")) lr_find_section(dir, p), any = true;
  // Markdown summaries (sets, ablations, lecun1989 tables) as text.
  std::vector<fs::path> md, png;
  for (auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (e.path().extension() == ".md") md.push_back(e.path());
    if (e.path().extension() == ".png") png.push_back(e.path());
  }
  std::sort(md.begin(), md.end());
  std::sort(png.begin(), png.end());
  for (auto& m : md) p.pre(m.filename().string(), text_of(m.string())), any = true;
  if (!png.empty()) {
    p.h2("Pictures");
    for (auto& f : png) {
      auto b = read_file(f.string());
      p.body += "<figure><img alt=\"" + esc(f.filename().string()) + "\" src=\"data:image/png;base64," + base64(b.data(), b.size()) +
                "\"><figcaption>" + esc(f.filename().string()) + "</figcaption></figure>\n";
    }
    any = true;
  }
  if (!config.empty()) p.pre("Resolved configuration (config.toml)", config);
  if (file_exists(dir + "/provenance.json")) p.pre("Provenance (provenance.json)", text_of(dir + "/provenance.json"));
  if (!any) throw Error("kiln report: '" + dir + "' holds no kiln results (metrics.jsonl, summary.json, lr_find.csv, *.md, *.png)");

  json data{{"charts", p.charts}};
  std::string js = data.dump();
  // Inside <script>, "</" would end the element: JSON allows "<\/".
  for (size_t i = 0; (i = js.find("</", i)) != std::string::npos; i += 3) js.replace(i, 2, "<\\/");
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kiln: " + esc(title) +
                     "</title>\n<style>" + kStyle + "</style>\n<script id=\"kiln-data\" type=\"application/json\">" + js +
                     "</script>\n<script>" + kScript + "</script></head>\n<body>\n<h1>kiln report: " + esc(title) + "</h1>\n";
  if (!description.empty()) html += "<p>" + esc(description) + "</p>\n";
  html += p.body + "</body></html>\n";
  auto out = dir + "/report.html";
  atomic_write(out, html);
  return out;
}

}  // namespace kiln

#include "topology/topology_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace weft {
namespace {

constexpr int kFormatVersion = 1;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string joinInts(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
  return out;
}

TopoKind kindFromName(const std::string& name, bool* ok) {
  for (int k = 0; k <= static_cast<int>(TopoKind::PciDevice); ++k)
    if (name == topoKindName(static_cast<TopoKind>(k))) return static_cast<TopoKind>(k);
  *ok = false;
  return TopoKind::PciDevice;
}

// Attribute reader that remembers the first problem.
class Attributes {
 public:
  Attributes(xmlNodePtr node, std::string* error) : node_(node), error_(error) {}
  std::string text(const char* name) {
    xmlChar* value = xmlGetProp(node_, reinterpret_cast<const xmlChar*>(name));
    if (value == nullptr) {
      if (error_->empty())
        *error_ = format("line %ld: <%s> lacks attribute %s", xmlGetLineNo(node_),
                         reinterpret_cast<const char*>(node_->name), name);
      return "";
    }
    std::string out(reinterpret_cast<const char*>(value));
    xmlFree(value);
    return out;
  }
  long integer(const char* name) { return strtol(text(name).c_str(), nullptr, 10); }
  double number(const char* name) { return strtod(text(name).c_str(), nullptr); }
  // Attributes later versions added: absent means unknown.
  double optionalNumber(const char* name) {
    xmlChar* value = xmlGetProp(node_, reinterpret_cast<const xmlChar*>(name));
    if (value == nullptr) return 0;
    double out = strtod(reinterpret_cast<const char*>(value), nullptr);
    xmlFree(value);
    return out;
  }
  std::vector<int> list(const char* name) {
    std::vector<int> out;
    std::istringstream in(text(name));
    for (int v; in >> v;) out.push_back(v);
    return out;
  }

 private:
  xmlNodePtr node_;
  std::string* error_;
};

}  // namespace

std::string topologyToXml(const MachineTopology& topo) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += format("<weft-topology version=\"%d\" source=\"%s\" gpus=\"%s\" nics=\"%s\" numa=\"%s\" packages=\"%s\">\n",
                kFormatVersion, escape(topo.source).c_str(), joinInts(topo.gpus).c_str(), joinInts(topo.nics).c_str(),
                joinInts(topo.numaNodes).c_str(), joinInts(topo.packages).c_str());
  for (size_t i = 0; i < topo.nodes.size(); ++i) {
    const TopoNode& n = topo.nodes[i];
    // %.17g: doubles come back bit for bit.
    out += format(
        "  <node id=\"%zu\" kind=\"%s\" parent=\"%d\" name=\"%s\" busid=\"%s\" numa=\"%d\" package=\"%d\" "
        "link_gbps=\"%.17g\" nic_gbps=\"%.17g\" detail=\"%s\"/>\n",
        i, topoKindName(n.kind), n.parent, escape(n.name).c_str(), escape(n.busId).c_str(), n.numa, n.package,
        n.linkGBps, n.nicGBps, escape(n.detail).c_str());
  }
  for (size_t a = 0; a < topo.nvlinkGBps.size(); ++a)
    for (size_t b = 0; b < topo.nvlinkGBps[a].size(); ++b)
      if (topo.nvlinkGBps[a][b] > 0)
        out += format("  <nvlink gpu_a=\"%zu\" gpu_b=\"%zu\" gbps=\"%.17g\"/>\n", a, b, topo.nvlinkGBps[a][b]);
  for (size_t g = 0; g < topo.nvswitchGBps.size(); ++g)
    if (topo.nvswitchGBps[g] > 0) out += format("  <nvswitch gpu=\"%zu\" gbps=\"%.17g\"/>\n", g, topo.nvswitchGBps[g]);
  out += "</weft-topology>\n";
  return out;
}

Status writeTopologyXml(const MachineTopology& topo, const std::string& path) {
  std::ofstream file(path);
  if (!file) return WEFT_ERROR(weftSystemError, "cannot write topology to %s: %s", path.c_str(), strerror(errno));
  file << topologyToXml(topo);
  if (!file) return WEFT_ERROR(weftSystemError, "writing topology to %s failed", path.c_str());
  return Status::ok();
}

bool isWeftTopologyXml(const std::string& path) {
  std::ifstream file(path);
  char head[512] = {0};
  file.read(head, sizeof(head) - 1);
  return strstr(head, "<weft-topology") != nullptr;
}

Result<MachineTopology> readTopologyXml(const std::string& path) {
  xmlDocPtr doc = xmlReadFile(path.c_str(), nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc == nullptr) {
    const xmlError* error = xmlGetLastError();
    return WEFT_ERROR(weftInvalidArgument, "cannot parse weft topology %s: %s", path.c_str(),
                      error != nullptr && error->message != nullptr ? error->message : "not well-formed XML");
  }
  std::string problem;
  MachineTopology topo;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  if (root == nullptr || xmlStrcmp(root->name, reinterpret_cast<const xmlChar*>("weft-topology")) != 0) {
    problem = "the root element is not <weft-topology>";
  } else {
    Attributes top(root, &problem);
    if (top.integer("version") != kFormatVersion)
      problem = format("format version %ld, expected %d", top.integer("version"), kFormatVersion);
    topo.source = top.text("source");
    topo.gpus = top.list("gpus");
    topo.nics = top.list("nics");
    topo.numaNodes = top.list("numa");
    topo.packages = top.list("packages");
    topo.nvlinkGBps.assign(topo.gpus.size(), std::vector<double>(topo.gpus.size(), 0.0));
    topo.nvswitchGBps.assign(topo.gpus.size(), 0.0);
    for (xmlNodePtr child = root->children; child != nullptr && problem.empty(); child = child->next) {
      if (child->type != XML_ELEMENT_NODE) continue;
      Attributes at(child, &problem);
      std::string element = reinterpret_cast<const char*>(child->name);
      if (element == "node") {
        if (at.integer("id") != static_cast<long>(topo.nodes.size())) {
          problem = format("line %ld: node ids must count up from 0", xmlGetLineNo(child));
          break;
        }
        TopoNode node;
        bool known = true;
        node.kind = kindFromName(at.text("kind"), &known);
        if (!known) problem = format("line %ld: unknown node kind '%s'", xmlGetLineNo(child), at.text("kind").c_str());
        node.parent = static_cast<int>(at.integer("parent"));
        node.name = at.text("name");
        node.busId = at.text("busid");
        node.numa = static_cast<int>(at.integer("numa"));
        node.package = static_cast<int>(at.integer("package"));
        node.linkGBps = at.number("link_gbps");
        node.nicGBps = at.optionalNumber("nic_gbps");
        node.detail = at.text("detail");
        topo.nodes.push_back(node);
      } else if (element == "nvlink") {
        size_t a = static_cast<size_t>(at.integer("gpu_a")), b = static_cast<size_t>(at.integer("gpu_b"));
        if (a >= topo.gpus.size() || b >= topo.gpus.size())
          problem = format("line %ld: NVLink between GPUs that do not exist", xmlGetLineNo(child));
        else
          topo.nvlinkGBps[a][b] = at.number("gbps");
      } else if (element == "nvswitch") {
        size_t g = static_cast<size_t>(at.integer("gpu"));
        if (g >= topo.gpus.size())
          problem = format("line %ld: NVSwitch links of a GPU that does not exist", xmlGetLineNo(child));
        else
          topo.nvswitchGBps[g] = at.number("gbps");
      }
    }
  }
  xmlFreeDoc(doc);
  // Structure: parents precede children, lists name nodes that exist.
  for (size_t i = 0; i < topo.nodes.size() && problem.empty(); ++i) {
    int parent = topo.nodes[i].parent;
    if ((i == 0) != (parent < 0) || parent >= static_cast<int>(i))
      problem = format("node %zu has parent %d", i, parent);
    else if (parent >= 0)
      topo.nodes[parent].children.push_back(static_cast<int>(i));
  }
  for (const auto* list : {&topo.gpus, &topo.nics, &topo.numaNodes, &topo.packages})
    for (int n : *list)
      if (problem.empty() && (n < 0 || n >= static_cast<int>(topo.nodes.size())))
        problem = format("list names node %d, which does not exist", n);
  if (topo.nodes.empty() && problem.empty()) problem = "no nodes";
  if (!problem.empty()) return WEFT_ERROR(weftInvalidArgument, "weft topology %s: %s", path.c_str(), problem.c_str());
  return topo;
}

}  // namespace weft

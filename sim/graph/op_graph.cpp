// OpGraph: ops in a vector, their data dependencies in a Boost.Graph adjacency list.

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>
#include <iterator>
#include <set>
#include <stdexcept>

#include "dlcarbon/graph.hpp"

namespace dlcarbon::graph {

Fusion fusion_of(const std::string& name) {
  if (name == "none" || tensorflow1_kernels(name) || fairseq_kernels(name)) return Fusion::none;
  if (name == "softmax") return Fusion::softmax;
  if (!attention_kernel(name).empty()) return Fusion::attention;
  return Fusion::elementwise;
}

std::string attention_kernel(const std::string& fusion) {
  if (fusion == "attention") return "flash2";
  if (fusion == "flash1" || fusion == "flash2" || fusion == "flash3") return fusion;
  return {};
}

struct OpGraph::Topology {
  boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS> g;
};

OpGraph::OpGraph() : topology_(std::make_unique<Topology>()) {}
OpGraph::~OpGraph() = default;
OpGraph::OpGraph(OpGraph&&) noexcept = default;
OpGraph& OpGraph::operator=(OpGraph&&) noexcept = default;

int OpGraph::add(Op op, const std::vector<int>& inputs) {
  const auto id = static_cast<int>(ops_.size());
  const auto v = boost::add_vertex(topology_->g);
  (void)v;
  for (const int in : inputs) {
    if (in < 0 || in >= id) throw std::logic_error("OpGraph::add: input " + std::to_string(in) + " does not exist");
    boost::add_edge(static_cast<std::size_t>(in), static_cast<std::size_t>(id), topology_->g);
  }
  ops_.push_back(std::move(op));
  return id;
}

std::vector<int> OpGraph::inputs_of(int id) const {
  std::vector<int> out;
  for (auto [it, end] = boost::in_edges(static_cast<std::size_t>(id), topology_->g); it != end; ++it) {
    out.push_back(static_cast<int>(boost::source(*it, topology_->g)));
  }
  return out;
}

std::vector<int> OpGraph::topological_order() const {
  std::vector<std::size_t> reversed;
  try {
    boost::topological_sort(topology_->g, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    throw std::logic_error("OpGraph: the operator graph has a cycle");
  }
  return std::vector<int>(reversed.rbegin(), reversed.rend());
}

namespace {
double sum_of(const std::vector<Op>& ops, double Op::*field) {
  double s = 0;
  for (const auto& op : ops) s += op.*field;
  return s;
}
}  // namespace

double OpGraph::parameters() const { return sum_of(ops_, &Op::params); }
double OpGraph::forward_flops() const { return sum_of(ops_, &Op::flops); }
double OpGraph::model_forward_flops() const {
  double total = 0;
  for (const Op& op : ops_) total += op.implementation ? 0 : op.flops * op.model_share;
  return total;
}
double OpGraph::forward_flops_full_attention() const {
  double total = 0;
  for (const Op& op : ops_) total += op.implementation ? 0 : (op.full_flops > 0 ? op.full_flops : op.flops) * op.model_share;
  return total;
}
double OpGraph::forward_bytes() const { return sum_of(ops_, &Op::bytes); }
double OpGraph::saved_bytes() const { return sum_of(ops_, &Op::saved_bytes); }

int OpGraph::layers() const {
  std::set<int> seen;
  for (const auto& op : ops_) {
    if (op.layer >= 0) seen.insert(op.layer);
  }
  return static_cast<int>(seen.size());
}

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::matmul: return "matmul";
    case OpKind::batched_matmul: return "batched_matmul";
    case OpKind::conv2d: return "conv2d";
    case OpKind::elementwise: return "elementwise";
    case OpKind::softmax: return "softmax";
    case OpKind::norm: return "norm";
    case OpKind::embedding: return "embedding";
    case OpKind::pool: return "pool";
    case OpKind::router: return "router";
  }
  return "?";
}

bool is_gemm(OpKind kind) {
  return kind == OpKind::matmul || kind == OpKind::batched_matmul || kind == OpKind::conv2d;
}

}  // namespace dlcarbon::graph

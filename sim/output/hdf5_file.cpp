#include <hdf5.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <algorithm>
#include <functional>
#include <new>
#include <sstream>
#include <stdexcept>

#include "dlcarbon/output.hpp"

namespace dlcarbon {

std::size_t Column::size() const {
  return std::visit([](const auto& v) { return v.size(); }, values);
}

const Column* Table::find(const std::string& name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

namespace {

// Before the library's first call: HDF5 is not torn down at exit. A file whose close failed (a
// full disk, a file-size limit: its last flush cannot be written) stays in the library's table,
// and the teardown at exit crashed on it (since session 40, a review; before, exit 139 after the
// message). The process ends anyway; the operating system takes back what is left.
void hdf5_init() {
  static const bool done = [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // our own messages, not HDF5's stack dumps
    return true;
  }();
  (void)done;
}

// Closes an HDF5 handle when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t), const std::string& what) : id_(id), close_(close) {
    if (id_ < 0) throw OutputError("HDF5: cannot " + what);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  // Closes it now, with the library's status (a file's close writes what is left).
  herr_t close() {
    const herr_t status = id_ >= 0 ? close_(id_) : 0;
    id_ = -1;
    return status;
  }
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

void check(herr_t status, const std::string& what) {
  if (status < 0) throw OutputError("HDF5: cannot " + what);
}

Handle string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose, "create a string type");
  check(H5Tset_size(t, H5T_VARIABLE), "set string size");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "set string encoding");
  return t;
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
              "create attribute " + name);
  const char* p = value.c_str();
  check(H5Awrite(attr, type, &p), "write attribute " + name);
}

void write_int_attr(hid_t obj, const std::string& name, std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle attr(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
              "create attribute " + name);
  check(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name);
}

void write_string_scalar(hid_t parent, const std::string& name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "create a scalar space");
  Handle ds(H5Dcreate2(parent, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose,
            "create dataset " + name);
  const char* p = value.c_str();
  check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "write dataset " + name);
  // Every dataset carries its units (DESIGN.md, output contract): text has none (since session 45).
  write_string_attr(ds, "units", "");
}

// Creates every group along "a/b/c" that does not exist yet.
hid_t open_or_create_group(hid_t file, const std::string& path) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "create link properties");
  check(H5Pset_create_intermediate_group(lcpl, 1), "set intermediate groups");
  if (H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0) return H5Gopen2(file, path.c_str(), H5P_DEFAULT);
  return H5Gcreate2(file, path.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
}

// Long columns are chunked and compressed (deflate); short ones stay contiguous.
Handle column_properties(hsize_t n) {
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "create dataset properties");
  constexpr hsize_t kCompressAbove = 4096;
  if (n > kCompressAbove) {
    const hsize_t chunk = std::min<hsize_t>(n, 65536);
    check(H5Pset_chunk(dcpl, 1, &chunk), "set chunk size");
    check(H5Pset_deflate(dcpl, 4), "set compression");
  }
  return dcpl;
}

void write_column(hid_t group, const Column& c) {
  const hsize_t n = c.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose, "create a data space");
  Handle dcpl = column_properties(n);
  std::visit(
      [&](const auto& values) {
        using T = typename std::decay_t<decltype(values)>::value_type;
        if constexpr (std::is_same_v<T, double>) {
          Handle ds(H5Dcreate2(group, c.name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl,
                               H5P_DEFAULT), H5Dclose, "create column " + c.name);
          if (n) check(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "write " + c.name);
          write_string_attr(ds, "units", c.units);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          Handle ds(H5Dcreate2(group, c.name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, dcpl,
                               H5P_DEFAULT), H5Dclose, "create column " + c.name);
          if (n) check(H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "write " + c.name);
          write_string_attr(ds, "units", c.units);
        } else {
          Handle type = string_type();
          Handle ds(H5Dcreate2(group, c.name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                    H5Dclose, "create column " + c.name);
          std::vector<const char*> ptrs;
          for (const auto& s : values) ptrs.push_back(s.c_str());
          if (n) check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "write " + c.name);
          write_string_attr(ds, "units", c.units);
        }
      },
      c.values);
}

void write_all(const std::string& path, const RunRecord& r) {
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
              "create " + path);
  write_int_attr(file, "format_version", r.format_version);
  write_string_attr(file, "dlcarbon_version", r.dlcarbon_version);
  write_string_attr(file, "git_sha", r.git_sha);
  write_string_attr(file, "created", r.created);
  write_int_attr(file, "seed", r.seed);
  write_string_attr(file, "scenario_name", r.scenario_name);
  {
    Handle g(open_or_create_group(file, "scenario"), H5Gclose, "create group scenario");
    write_string_scalar(g, "given", r.scenario_given);
    write_string_scalar(g, "resolved", r.scenario_resolved);
  }
  for (const auto& t : r.tables) {
    for (const auto& c : t.columns) {
      if (c.size() != t.rows()) throw OutputError("table " + t.path + ": column " + c.name + " has a different length");
    }
    Handle g(open_or_create_group(file, t.path), H5Gclose, "create group " + t.path);
    std::string names;
    for (const auto& c : t.columns) {
      names += (names.empty() ? "" : ",") + c.name;
      write_column(g, c);
    }
    write_string_attr(g, "columns", names);
  }
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush " + path);
  check(file.close(), "close " + path);
}

// --- reading -----------------------------------------------------------------------------

std::string read_string_value(hid_t obj, bool is_attr) {
  Handle type(is_attr ? H5Aget_type(obj) : H5Dget_type(obj), H5Tclose, "get type");
  if (H5Tget_class(type) != H5T_STRING) throw OutputError("expected a string");
  if (H5Tis_variable_str(type) > 0) {
    Handle mem = string_type();
    char* p = nullptr;
    check(is_attr ? H5Aread(obj, mem, &p) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p), "read string");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const std::size_t n = H5Tget_size(type);
  std::string s(n, '\0');
  check(is_attr ? H5Aread(obj, type, s.data()) : H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s.data()),
        "read string");
  s.resize(s.find('\0') == std::string::npos ? n : s.find('\0'));
  return s;
}

std::string read_string_attr(hid_t obj, const std::string& name) {
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
  return read_string_value(attr, true);
}

std::int64_t read_int_attr(hid_t obj, const std::string& name) {
  Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, "open attribute " + name);
  std::int64_t v = 0;
  check(H5Aread(attr, H5T_NATIVE_INT64, &v), "read attribute " + name);
  return v;
}

Column read_column(hid_t group, const std::string& name) {
  Handle ds(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose, "open column " + name);
  Handle space(H5Dget_space(ds), H5Sclose, "get space");
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(space) != 1) throw OutputError("column " + name + " is not 1-D");
  H5Sget_simple_extent_dims(space, &n, nullptr);
  Handle type(H5Dget_type(ds), H5Tclose, "get type");
  Column c;
  c.name = name;
  c.units = read_string_attr(ds, "units");
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_FLOAT) {
    std::vector<double> v(n);
    if (n) check(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "read " + name);
    c.values = std::move(v);
  } else if (cls == H5T_INTEGER) {
    std::vector<std::int64_t> v(n);
    if (n) check(H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "read " + name);
    c.values = std::move(v);
  } else if (cls == H5T_STRING) {
    Handle mem = string_type();
    std::vector<char*> ptrs(n, nullptr);
    // The strings HDF5 allocated are freed however the read ends (a failed read may have filled
    // some; copying them may throw; since session 41, a review: they leaked on those paths).
    struct Reclaim {
      hid_t mem, space;
      std::vector<char*>& ptrs;
      ~Reclaim() {
        if (!ptrs.empty()) H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
      }
    } reclaim{mem, space, ptrs};
    if (n) check(H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "read " + name);
    std::vector<std::string> v;
    v.reserve(ptrs.size());
    for (char* p : ptrs) v.emplace_back(p ? p : "");
    c.values = std::move(v);
  } else {
    throw OutputError("column " + name + " has an unsupported type");
  }
  return c;
}

}  // namespace

std::filesystem::path output_target(const std::filesystem::path& given) {
  std::filesystem::path path = given;
  std::error_code ec;
  for (int hops = 0; std::filesystem::is_symlink(path, ec); ++hops) {
    if (hops == 40) return {};
    const std::filesystem::path target = std::filesystem::read_symlink(path, ec);
    if (ec) return {};
    path = target.is_absolute() ? target : path.parent_path() / target;
  }
  return path;
}

namespace {
// The temporary file being written, removed if the process is interrupted (SIGINT, SIGTERM,
// SIGHUP) before it is renamed into place: nothing half-written is left (since session 35; before,
// an interrupted write left `OUT.tmp-PID`, hundreds of MB for a long hourly lifecycle).
char g_tmp_path[4096];
std::atomic<bool> g_tmp_active{false};

extern "C" void remove_tmp_and_reraise(int sig) {
  if (g_tmp_active.load()) ::unlink(g_tmp_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class TmpGuard {
 public:
  explicit TmpGuard(const std::string& path) {
    if (path.size() >= sizeof g_tmp_path) return;
    std::memcpy(g_tmp_path, path.c_str(), path.size() + 1);
    g_tmp_active.store(true);
    for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
      // A signal the process was started ignoring (nohup's SIGHUP, a background job's SIGINT)
      // stays ignored: it would not have stopped the write.
      struct sigaction current {};
      if (::sigaction(sig, nullptr, &current) != 0 || current.sa_handler == SIG_IGN) continue;
      struct sigaction action {};
      action.sa_handler = remove_tmp_and_reraise;
      sigemptyset(&action.sa_mask);
      struct sigaction old {};
      if (::sigaction(sig, &action, &old) == 0) saved_.push_back({sig, old});
    }
    // Past a file-size limit (`ulimit -f`) the write fails with EFBIG instead of the signal
    // killing the process, so that the failure removes the file and says why (since session 40,
    // a review; before, the killed process left the temporary file).
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    struct sigaction old {};
    if (::sigaction(SIGXFSZ, &ignore, &old) == 0) saved_.push_back({SIGXFSZ, old});
  }
  ~TmpGuard() {
    g_tmp_active.store(false);
    for (const auto& [sig, old] : saved_) ::sigaction(sig, &old, nullptr);
  }
  TmpGuard(const TmpGuard&) = delete;
  TmpGuard& operator=(const TmpGuard&) = delete;

 private:
  std::vector<std::pair<int, struct sigaction>> saved_;
};
}  // namespace

std::filesystem::path temporary_output(const std::filesystem::path& path) {
  const std::string suffix = ".tmp-" + std::to_string(::getpid());
  // (A name may have 255 bytes; a long one would leave no room for the suffix.)
  if (path.filename().string().size() + suffix.size() <= 255) return path.string() + suffix;
  return path.parent_path() / (".dlcarbon-" + std::to_string(::getpid()) + ".tmp");
}

void write_run(const std::filesystem::path& given, const RunRecord& record) {
  hdf5_init();
  // A symbolic link is written through (the file it leads to is the output; the link stays).
  const std::filesystem::path path = output_target(given);
  if (path.empty()) throw OutputError("cannot write " + given.string() + ": its links loop or pass 40");
  const std::string tmp = temporary_output(path).string();
  const TmpGuard guard(tmp);
  try {
    errno = 0;
    write_all(tmp, record);
  } catch (const OutputError& e) {
    // What the operating system said, where it said something a user can act on (a full disk, a
    // quota, a file-size limit: since session 40; before, only the column HDF5 failed on).
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    const bool told = err == ENOSPC || err == EFBIG || err == EDQUOT || err == EIO || err == EROFS || err == EACCES;
    throw OutputError("cannot write " + path.string() + ": " + e.what() + (told ? std::string(": ") + std::strerror(err) : ""));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  // A file replaced keeps its permissions (a results file shared with a group stays shared; since
  // session 42: the new file took the umask's).
  if (const auto old = std::filesystem::status(path, ec); !ec && std::filesystem::is_regular_file(old)) {
    std::filesystem::permissions(tmp, old.permissions(), std::filesystem::perm_options::replace, ec);
  }
  ec.clear();
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();  // (before removing the temporary file resets ec)
    std::filesystem::remove(tmp, ec);
    throw OutputError("cannot rename " + tmp + " to " + path.string() + ": " + why);
  }
}

namespace {
RunRecord read_run_unguarded(const std::filesystem::path& path);
}  // namespace

RunRecord read_run(const std::filesystem::path& path) {
  try {
    return read_run_unguarded(path);
  } catch (const std::bad_alloc&) {
    // A damaged file can claim a dataset or string of any size (since session 34: an internal
    // failure). What libhdf5 itself does with some damaged files is out of reach here.
    throw OutputError(path.string() + ": cannot read: a dataset claims more memory than there is (a damaged file?)");
  } catch (const std::length_error&) {
    throw OutputError(path.string() + ": cannot read: a dataset claims more memory than there is (a damaged file?)");
  }
}

std::string read_scenario_name(const std::filesystem::path& path) {
  try {
    hdf5_init();
    if (H5Fis_hdf5(path.c_str()) <= 0) return "";
    Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "open " + path.string());
    if (H5Aexists(file, "format_version") <= 0 || H5Aexists(file, "scenario_name") <= 0) return "";
    return read_string_attr(file, "scenario_name");
  } catch (const std::exception&) {
    return "";
  }
}

namespace {
RunRecord read_run_unguarded(const std::filesystem::path& path) {
  hdf5_init();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw OutputError(path.string() + ": not an HDF5 file");
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, "open " + path.string());
  RunRecord r;
  if (H5Aexists(file, "format_version") <= 0) throw OutputError(path.string() + ": not a dlcarbon file (no format_version)");
  r.format_version = read_int_attr(file, "format_version");
  // A file of another layout is not read as this one (since session 44, a review: version 2 was
  // read and shown as if it were 1).
  if (r.format_version != kFormatVersion) {
    throw OutputError(path.string() + ": format_version " + std::to_string(r.format_version) + "; this dlcarbon reads version " +
                      std::to_string(kFormatVersion));
  }
  r.dlcarbon_version = read_string_attr(file, "dlcarbon_version");
  r.git_sha = read_string_attr(file, "git_sha");
  r.created = read_string_attr(file, "created");
  r.seed = read_int_attr(file, "seed");
  r.scenario_name = read_string_attr(file, "scenario_name");
  {
    Handle g(H5Dopen2(file, "scenario/given", H5P_DEFAULT), H5Dclose, "open scenario/given");
    r.scenario_given = read_string_value(g, false);
    Handle h(H5Dopen2(file, "scenario/resolved", H5P_DEFAULT), H5Dclose, "open scenario/resolved");
    r.scenario_resolved = read_string_value(h, false);
  }
  // Every group with a `columns` attribute is a table; visit in name order.
  std::vector<std::string> table_paths;
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    if (info->type == H5O_TYPE_GROUP && std::string(name) != ".") {
      static_cast<std::vector<std::string>*>(data)->push_back(name);
    }
    return 0;
  };
  check(H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, &table_paths), "list groups");
  for (const auto& p : table_paths) {
    Handle g(H5Gopen2(file, p.c_str(), H5P_DEFAULT), H5Gclose, "open group " + p);
    if (H5Aexists(g, "columns") <= 0) continue;
    Table t;
    t.path = p;
    std::stringstream names(read_string_attr(g, "columns"));
    for (std::string name; std::getline(names, name, ',');) t.columns.push_back(read_column(g, name));
    // A table's columns are its rows: one of another length is a damaged or edited file, which
    // every reader would index past (since session 37, a review: inspect, merge and a resumed
    // sweep crashed on it).
    for (const auto& c : t.columns) {
      if (c.size() != t.columns.front().size()) {
        throw OutputError(path.string() + ": table " + p + ": column " + c.name + " has " + std::to_string(c.size()) +
                          " rows, column " + t.columns.front().name + " " + std::to_string(t.columns.front().size()) +
                          " (a damaged or edited file?)");
      }
    }
    r.tables.push_back(std::move(t));
  }
  return r;
}
}  // namespace

}  // namespace dlcarbon

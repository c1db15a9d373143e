#include "vfolder_commands.hpp"

#include "output.hpp"
#include "transfer_progress.hpp"

#include <bai/vfolder_transfer.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <iostream>
#include <memory>

namespace bai::cli {
namespace {

using Json = nlohmann::json;

template <class Body>
void onRun(CLI::App* command, CommandContext& context, Body body) {
  command->callback([&context, body] { context.action = [&context, body] { return body(context); }; });
}

// Runs one call; prints its error, or hands its value to `done`.
template <class Call, class Done>
int run(CommandContext& context, Call call, Done done) {
  const client::Client* api = context.api();
  if (api == nullptr) return kExitUsage;
  auto result = call(*api);
  if (!result) return context.fail(result.error());
  if constexpr (requires { *result; }) {
    done(*result);
  } else {
    done();
  }
  return kExitOk;
}

std::string sizeCell(const std::optional<std::uint64_t>& bytes) { return bytes ? formatBytes(*bytes) : "-"; }

void printVfolders(const std::vector<client::Vfolder>& folders) {
  Table table({"NAME", "ID", "OWNER", "HOST", "QUOTA", "ACCESS", "CREATED"});
  for (const auto& f : folders) table.add({f.name, f.id, f.owner, f.host, sizeCell(f.quotaBytes), f.access, f.createdAt});
  table.print(std::cout);
}

void printVfolder(const client::Vfolder& f) {
  std::string shares;
  for (const auto& share : f.sharedWith) shares += (shares.empty() ? "" : ", ") + share.accessKey + " (" + share.permission + ")";
  Table table({"FIELD", "VALUE"});
  table.add({"name", f.name});
  table.add({"id", f.id});
  table.add({"owner", f.owner});
  table.add({"host", f.host});
  table.add({"quota", sizeCell(f.quotaBytes)});
  table.add({"used", sizeCell(f.usedBytes)});
  table.add({"files", f.fileCount ? std::to_string(*f.fileCount) : "-"});
  table.add({"access", f.access});
  table.add({"shares get", f.permission});
  table.add({"shared with", shares.empty() ? "-" : shares});
  table.add({"created", f.createdAt});
  table.print(std::cout);
}

Json entriesJson(const std::vector<client::FileEntry>& entries) {
  Json list = Json::array();
  for (const auto& e : entries) {
    list.push_back({{"path", e.path}, {"type", e.type}, {"size", e.size}, {"mode", e.mode}, {"modified_at_ms", e.modifiedAtMs}});
  }
  return Json{{"entries", list}};
}

void printEntries(const std::vector<client::FileEntry>& entries) {
  Table table({"TYPE", "SIZE", "MODIFIED", "PATH"});
  for (const auto& e : entries) {
    table.add({e.type, e.type == "file" ? formatBytes(e.size) : "-", formatAge(e.modifiedAtMs), e.path});
  }
  table.print(std::cout);
}

Json summaryJson(const client::TransferSummary& summary, double seconds) {
  return Json{{"bytes", summary.bytes}, {"files", summary.files}, {"directories", summary.directories},
              {"skipped", summary.skipped}, {"seconds", seconds}};
}

struct TransferArgs {
  std::string folder;
  std::vector<std::string> paths;
  std::string to;
  bool recursive = false;
};

// A failure found here (a local path, a directory without -r) is the caller's mistake or
// a refusal; only no answer from the manager or the proxy is "unreachable" (3).
int transferFailed(CommandContext& c, const client::ApiError& error) {
  const int code = c.fail(error);
  if (error.status != 0 || error.type == "proxy-unreachable" || error.type == "unreachable" || error.type == "invalid-reply") {
    return code;
  }
  return error.type == "is-a-directory" || error.type == "no-such-file" || error.type == "invalid-path" ? kExitUsage
                                                                                                        : kExitRefused;
}

// Moves each path in turn (one grant each); the first failure ends the command.
int transfer(CommandContext& c, const TransferArgs& args, bool upload) {
  const client::Client* api = c.api();
  if (api == nullptr) return kExitUsage;
  ProgressDisplay display(std::cerr, !c.json && ::isatty(STDERR_FILENO) == 1);
  client::TransferOptions options;
  options.recursive = args.recursive;
  options.progress = [&display](const client::TransferProgress& progress) { display.update(progress); };
  client::TransferSummary total;
  const auto start = ProgressDisplay::Clock::now();
  for (const std::string& path : args.paths) {
    auto done = upload ? client::uploadToVfolder(*api, args.folder, path, args.to, options)
                       : client::downloadFromVfolder(*api, args.folder, path, args.to.empty() ? "." : args.to, options);
    if (!done) {
      if (!c.json) std::cerr << "\n";
      return transferFailed(c, done.error());
    }
    total.bytes += done->bytes;
    total.files += done->files;
    total.directories += done->directories;
    total.skipped.insert(total.skipped.end(), done->skipped.begin(), done->skipped.end());
  }
  if (c.json) {
    std::cout << summaryJson(total, std::chrono::duration<double>(ProgressDisplay::Clock::now() - start).count()).dump() << "\n";
  } else {
    display.finish(total);
  }
  return kExitOk;
}

void addTransferCommands(CLI::App* vfolder, CommandContext& context) {
  for (const bool upload : {true, false}) {
    auto args = std::make_shared<TransferArgs>();
    CLI::App* command = vfolder->add_subcommand(upload ? "upload" : "download",
                                                upload ? "copy local files (with -r: trees) into a folder"
                                                       : "copy a folder's files (with -r: directories) here");
    command->add_option("folder", args->folder, "folder name or id")->required();
    command->add_option("paths", args->paths, upload ? "local files or directories" : "paths inside the folder")->required();
    command->add_option("--to", args->to, upload ? "the folder's directory to put them in (default: its root)"
                                                 : "the local directory to put them in (default: .)");
    command->add_flag("-r,--recursive", args->recursive, "directories and everything below them");
    onRun(command, context, [args, upload](CommandContext& c) { return transfer(c, *args, upload); });
  }
}

void addFileCommands(CLI::App* vfolder, CommandContext& context) {
  struct FileArgs {
    std::string folder;
    std::string path;
    std::string to;
    bool recursive = false;
    bool parents = false;
  };
  auto ls = std::make_shared<FileArgs>();
  CLI::App* lsCommand = vfolder->add_subcommand("ls", "list a folder's directory (or one file)");
  lsCommand->add_option("folder", ls->folder, "folder name or id")->required();
  lsCommand->add_option("path", ls->path, "path inside the folder (default: its root)");
  lsCommand->add_flag("-r,--recursive", ls->recursive, "everything below it");
  onRun(lsCommand, context, [ls](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolderFiles(ls->folder, ls->path, ls->recursive); },
               [&](const std::vector<client::FileEntry>& entries) {
                 if (c.json) {
                   std::cout << entriesJson(entries).dump() << "\n";
                 } else {
                   printEntries(entries);
                 }
               });
  });
  auto mkdir = std::make_shared<FileArgs>();
  CLI::App* mkdirCommand = vfolder->add_subcommand("mkdir", "make a directory in a folder");
  mkdirCommand->add_option("folder", mkdir->folder, "folder name or id")->required();
  mkdirCommand->add_option("path", mkdir->path, "path inside the folder")->required();
  mkdirCommand->add_flag("-p,--parents", mkdir->parents, "make missing parents too");
  onRun(mkdirCommand, context, [mkdir](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolderMkdir(mkdir->folder, mkdir->path, mkdir->parents); }, [] {});
  });
  auto rm = std::make_shared<FileArgs>();
  CLI::App* rmCommand = vfolder->add_subcommand("rm", "delete a file (with -r: a directory tree) in a folder");
  rmCommand->add_option("folder", rm->folder, "folder name or id")->required();
  rmCommand->add_option("path", rm->path, "path inside the folder")->required();
  rmCommand->add_flag("-r,--recursive", rm->recursive, "a directory and everything below it");
  onRun(rmCommand, context, [rm](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolderDelete(rm->folder, rm->path, rm->recursive); }, [] {});
  });
  auto mv = std::make_shared<FileArgs>();
  CLI::App* mvCommand = vfolder->add_subcommand("mv", "move or rename inside a folder");
  mvCommand->add_option("folder", mv->folder, "folder name or id")->required();
  mvCommand->add_option("from", mv->path, "path inside the folder")->required();
  mvCommand->add_option("to", mv->to, "its new path")->required();
  onRun(mvCommand, context, [mv](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolderMove(mv->folder, mv->path, mv->to); }, [] {});
  });
}

void addFolderCommands(CLI::App* vfolder, CommandContext& context) {
  auto spec = std::make_shared<client::VfolderSpec>();
  CLI::App* create = vfolder->add_subcommand("create", "a new virtual folder");
  create->add_option("name", spec->name, "1-64 of A-Z a-z 0-9 . _ - (not starting with .)")->required();
  create->add_option("--host", spec->host, "PROXY:VOLUME (default: the manager's)");
  create->add_option("-q,--quota", spec->quota, "its quota, e.g. 10g (default: none, or the policy's limit)");
  create->add_option("--permission", spec->permission, "what those it is shared with get (default: rw)")
      ->check(CLI::IsMember({"ro", "rw"}));
  const auto printOne = [](CommandContext& c) {
    return [&c](const client::Vfolder& f) { c.json ? void(std::cout << f.json << "\n") : printVfolder(f); };
  };
  onRun(create, context, [spec, printOne](CommandContext& c) {
    return run(c, [&](auto& api) { return api.createVfolder(*spec); }, printOne(c));
  });
  auto all = std::make_shared<bool>(false);
  CLI::App* list = vfolder->add_subcommand("list", "your folders and those shared with you");
  list->add_flag("--all", *all, "admins: every folder");
  onRun(list, context, [all](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolders(*all); }, [&](const std::vector<client::Vfolder>& folders) {
      c.json ? void(std::cout << "{\"vfolders\":" << jsonArray(folders) << "}\n") : printVfolders(folders);
    });
  });
  auto ref = std::make_shared<std::string>();
  CLI::App* info = vfolder->add_subcommand("info", "one folder, with its usage measured now");
  info->add_option("folder", *ref, "folder name or id")->required();
  onRun(info, context, [ref, printOne](CommandContext& c) {
    return run(c, [&](auto& api) { return api.vfolder(*ref); }, printOne(c));
  });
  CLI::App* remove = vfolder->add_subcommand("delete", "delete a folder and everything in it");
  remove->add_option("folder", *ref, "folder name or id")->required();
  onRun(remove, context, [ref](CommandContext& c) { return run(c, [&](auto& api) { return api.deleteVfolder(*ref); }, [] {}); });
  auto share = std::make_shared<std::array<std::string, 3>>();  // folder, access key, permission
  CLI::App* shareCommand = vfolder->add_subcommand("share", "let another keypair use a folder");
  shareCommand->add_option("folder", (*share)[0], "folder name or id")->required();
  shareCommand->add_option("access-key", (*share)[1], "the keypair's access key")->required();
  shareCommand->add_option("--permission", (*share)[2], "ro or rw (default: the folder's)")->check(CLI::IsMember({"ro", "rw"}));
  onRun(shareCommand, context, [share, printOne](CommandContext& c) {
    return run(c, [&](auto& api) { return api.shareVfolder((*share)[0], (*share)[1], (*share)[2]); }, printOne(c));
  });
  CLI::App* unshare = vfolder->add_subcommand("unshare", "take a keypair's access to a folder back");
  unshare->add_option("folder", (*share)[0], "folder name or id")->required();
  unshare->add_option("access-key", (*share)[1], "the keypair's access key")->required();
  onRun(unshare, context, [share](CommandContext& c) {
    return run(c, [&](auto& api) { return api.unshareVfolder((*share)[0], (*share)[1]); }, [] {});
  });
  onRun(vfolder->add_subcommand("hosts", "the storage volumes folders can live on"), context, [](CommandContext& c) {
    return run(c, [](auto& api) { return api.storageHosts(); }, [&](const std::vector<client::StorageHost>& hosts) {
      if (c.json) {
        std::cout << "{\"hosts\":" << jsonArray(hosts) << "}\n";
        return;
      }
      Table table({"HOST", "BACKEND", "KERNEL QUOTA", "FREE", "TOTAL"});
      for (const auto& h : hosts) {
        table.add({h.host, h.backend, h.kernelQuota ? "yes" : "no", formatBytes(h.freeBytes), formatBytes(h.totalBytes)});
      }
      table.print(std::cout);
    });
  });
}

}  // namespace

void addVfolderCommands(CLI::App& app, CommandContext& context) {
  CLI::App* vfolder = app.add_subcommand("vfolder", "virtual folders: storage that sessions mount")->require_subcommand(1);
  addFolderCommands(vfolder, context);
  addFileCommands(vfolder, context);
  addTransferCommands(vfolder, context);
}

}  // namespace bai::cli

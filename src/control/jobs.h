// The client operations of the node's grid as whole jobs: open a session on
// a snapshot of the servers table, read the secrets the operation needs, run
// the immutable or mutable operation, close the session, report. They know
// nothing of the control socket (no Request, Reply or task): a control task
// calls them after its locks are held, and a daemon timer (a scheduled
// backup, a maintenance pass) can call them the same way.
//
// Each job's `done` runs exactly once, on a later turn than the call, after
// its session is closed (also when it fails at once: the grid is closing,
// a NURL does not parse, a secret cannot be read). Loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/status.h"
#include "cairn/grid/grid.h"
#include "cairn/immutable/downloader.h"
#include "cairn/immutable/uploader.h"
#include "cairn/mutable/mutable_file.h"

namespace cairn::control {

// What a job reports while it runs, and when it should stop. The grid's
// closing stops every job too.
struct JobHooks {
  grid::ProgressFn progress;   // may be empty
  grid::StopFn stop;           // may be empty
  Callback<void()> ready;      // the session is open and the secrets read; may be empty
};

// Uploads the file at `path` (immutable). `options.convergence` empty: the
// node's convergence secret; the lease secret is always the node's.
void PutJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, std::string path,
            immutable::UploadOptions options, JobHooks hooks,
            Callback<void(Result<immutable::UploadResult>)> done);

// Downloads the file of `cap` (LIT or CHK) to `path`.
void GetJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap, std::string path,
            JobHooks hooks, Callback<void(Result<immutable::DownloadResult>)> done);

// Publishes `contents` as seqnum 1 of the new file of `key`; the lease
// secret is the node's (options.lease_secret is set by the job).
void CreateMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, mutable_files::NewKey key,
                      std::string contents, mutable_files::MutableOptions options, JobHooks hooks,
                      Callback<void(Result<mutable_files::PublishResult>)> done);

// Publishes `contents` as the next version of the file of `writecap`.
void PublishMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap writecap,
                       std::string contents, mutable_files::MutableOptions options, JobHooks hooks,
                       Callback<void(Result<mutable_files::PublishResult>)> done);

// Writes `data` at `offset` of the MDMF file of `writecap` in place.
void UpdateMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap writecap,
                      std::uint64_t offset, std::string data, mutable_files::MutableOptions options, JobHooks hooks,
                      Callback<void(Result<mutable_files::PublishResult>)> done);

// Reads the newest recoverable version of the file of `cap` (with
// `options`: a range of it).
void RetrieveMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap, JobHooks hooks,
                        Callback<void(Result<mutable_files::RetrieveResult>)> done);
void RetrieveMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap,
                        mutable_files::RetrieveOptions options, JobHooks hooks,
                        Callback<void(Result<mutable_files::RetrieveResult>)> done);

}  // namespace cairn::control

// The grid jobs (control/jobs.h): one skeleton — open a session, read the
// secrets, run, close, deliver once — and one short body per operation.
// Loop thread only.
#include "control/jobs.h"

#include <memory>
#include <utility>

#include "cairn/grid/operation.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;

// What a job's body gets: the session's servers, the secrets it asked for,
// the progress and stop callbacks to hand on, and `finish`, which closes
// the session and then delivers the result.
template <typename R>
struct JobRun {
  std::vector<grid::GridServer> servers;
  grid::NodeSecrets secrets;
  grid::ProgressFn progress;
  grid::StopFn stop;
  Callback<void(Result<R>)> finish;
};

template <typename R>
using JobBody = Callback<void(JobRun<R> run)>;

struct SecretsWanted {
  bool convergence = false;
  bool lease = false;
};

template <typename R>
void RunJob(grid::Grid& grid, const char* name, const std::vector<grid::ServerEntry>& servers, SecretsWanted wanted,
            JobHooks hooks, JobBody<R> body, Callback<void(Result<R>)> done) {
  grid::Operation<R> op(grid.loop(), name, std::move(done));
  auto opened = grid.Open(servers);
  if (!opened.ok()) return op.FinishSoon(opened.status());
  std::shared_ptr<grid::Session> session = std::move(opened).value();
  auto finish = [session, op](Result<R> result) {
    grid::Session::Close(session, [op, result = std::move(result)]() mutable { op.Finish(std::move(result)); });
  };
  auto user_stop = std::make_shared<grid::StopFn>(std::move(hooks.stop));
  JobRun<R> run;
  run.servers = session->servers();
  run.progress = std::move(hooks.progress);
  if (!run.progress) run.progress = [](const std::string&, std::uint64_t, std::uint64_t) {};
  run.stop = [session, user_stop] { return session->stopping() || (*user_stop && (*user_stop)()); };
  run.finish = finish;
  auto go = [ready = std::move(hooks.ready), body = std::move(body)](JobRun<R> r) mutable {
    if (ready) ready();
    body(std::move(r));
  };
  if (!wanted.convergence && !wanted.lease) return go(std::move(run));
  auto pending = std::make_shared<JobRun<R>>(std::move(run));
  grid.ReadSecrets(wanted.convergence, wanted.lease,
                   [pending, finish, go = std::move(go)](Result<grid::NodeSecrets> secrets) mutable {
                     if (!secrets.ok()) return finish(secrets.status());
                     if (pending->secrets.convergence.empty()) pending->secrets.convergence = secrets->convergence;
                     pending->secrets.lease = secrets->lease;
                     go(std::move(*pending));
                   });
}

}  // namespace

void PutJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, std::string path,
            immutable::UploadOptions options, JobHooks hooks, Callback<void(Result<immutable::UploadResult>)> done) {
  Loop* loop = &grid.loop();
  SecretsWanted wanted{options.convergence.empty(), true};
  RunJob<immutable::UploadResult>(
      grid, "put", servers, wanted, std::move(hooks),
      [loop, path = std::move(path), options = std::move(options)](JobRun<immutable::UploadResult> run) mutable {
        if (options.convergence.empty()) options.convergence = run.secrets.convergence;
        options.lease_secret = run.secrets.lease;
        immutable::UploadFile(*loop, run.servers, path, std::move(options), std::move(run.progress),
                              std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

void GetJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap, std::string path,
            JobHooks hooks, Callback<void(Result<immutable::DownloadResult>)> done) {
  Loop* loop = &grid.loop();
  RunJob<immutable::DownloadResult>(
      grid, "get", servers, SecretsWanted{}, std::move(hooks),
      [loop, cap = std::move(cap), path = std::move(path)](JobRun<immutable::DownloadResult> run) mutable {
        immutable::DownloadFile(*loop, run.servers, std::move(cap), path, std::move(run.progress),
                                std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

void CreateMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, mf::NewKey key, std::string contents,
                      mf::MutableOptions options, JobHooks hooks, Callback<void(Result<mf::PublishResult>)> done) {
  Loop* loop = &grid.loop();
  RunJob<mf::PublishResult>(
      grid, "mutable create", servers, SecretsWanted{false, true}, std::move(hooks),
      [loop, key = std::move(key), contents = std::move(contents),
       options = std::move(options)](JobRun<mf::PublishResult> run) mutable {
        options.lease_secret = run.secrets.lease;
        mf::CreateMutable(*loop, run.servers, std::move(key), std::move(contents), std::move(options),
                          std::move(run.progress), std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

void PublishMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap writecap,
                       std::string contents, mf::MutableOptions options, JobHooks hooks,
                       Callback<void(Result<mf::PublishResult>)> done) {
  Loop* loop = &grid.loop();
  RunJob<mf::PublishResult>(
      grid, "mutable publish", servers, SecretsWanted{false, true}, std::move(hooks),
      [loop, writecap = std::move(writecap), contents = std::move(contents),
       options = std::move(options)](JobRun<mf::PublishResult> run) mutable {
        options.lease_secret = run.secrets.lease;
        mf::PublishMutable(*loop, run.servers, std::move(writecap), std::move(contents), std::move(options),
                           std::move(run.progress), std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

void UpdateMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap writecap,
                      std::uint64_t offset, std::string data, mf::MutableOptions options, JobHooks hooks,
                      Callback<void(Result<mf::PublishResult>)> done) {
  Loop* loop = &grid.loop();
  RunJob<mf::PublishResult>(
      grid, "mutable update", servers, SecretsWanted{false, true}, std::move(hooks),
      [loop, writecap = std::move(writecap), offset, data = std::move(data),
       options = std::move(options)](JobRun<mf::PublishResult> run) mutable {
        options.lease_secret = run.secrets.lease;
        mf::UpdateMutable(*loop, run.servers, std::move(writecap), offset, std::move(data), std::move(options),
                          std::move(run.progress), std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

void RetrieveMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap, JobHooks hooks,
                        Callback<void(Result<mf::RetrieveResult>)> done) {
  RetrieveMutableJob(grid, std::move(servers), std::move(cap), mf::RetrieveOptions{}, std::move(hooks),
                     std::move(done));
}

void RetrieveMutableJob(grid::Grid& grid, std::vector<grid::ServerEntry> servers, caps::Cap cap,
                        mf::RetrieveOptions options, JobHooks hooks, Callback<void(Result<mf::RetrieveResult>)> done) {
  Loop* loop = &grid.loop();
  RunJob<mf::RetrieveResult>(
      grid, "mutable retrieve", servers, SecretsWanted{false, true}, std::move(hooks),
      [loop, cap = std::move(cap), options = std::move(options)](JobRun<mf::RetrieveResult> run) mutable {
        mf::RetrieveMutable(*loop, run.servers, std::move(cap), std::move(options), std::move(run.progress),
                            std::move(run.stop), std::move(run.finish));
      },
      std::move(done));
}

}  // namespace cairn::control

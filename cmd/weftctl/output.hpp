#pragma once
// weftctl's output for people (text) and scripts (--output json), per subcommand.

#include <string>
#include <vector>

#include "cmd/weftctl/daemon_status.hpp"
#include "cmd/weftctl/doctor.hpp"
#include "cmd/weftctl/kernel_view.hpp"
#include "cmd/weftctl/status.hpp"

namespace weft::ctl {

std::string status_json(const NodeStatus& s);
std::string peers_text(const DaemonStatus& d, const KernelView& k);
std::string peers_json(const DaemonStatus& d, const KernelView& k);
std::string doctor_text(const std::vector<Check>& checks);
std::string doctor_json(const std::vector<Check>& checks);

}  // namespace weft::ctl

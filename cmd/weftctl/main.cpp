// weftctl: status and diagnostics for people.
#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"weftctl: weft status and diagnostics"};
  app.set_version_flag("--version", std::string("weftctl ") + WEFT_VERSION);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

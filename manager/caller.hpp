// Who is calling the user API, as the request signature proved.
#pragma once

#include <string>

namespace bai::manager {

struct Caller {
  std::string accessKey;
  bool admin = false;
};

}  // namespace bai::manager

#include "tools/remote/s3_config.h"

#include <cstdlib>
#include <fstream>
#include <map>

namespace uffdlazy::remote {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// The key = value pairs of section `section` of an INI file (the AWS shared files' format).
std::map<std::string, std::string> ini_section(const std::string& path, const std::string& section) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      inside = trim(line.substr(1, line.size() - 2)) == section;
      continue;
    }
    const size_t eq = line.find('=');
    if (inside && eq != std::string::npos) out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::string home_file(const char* variable, const char* name) {
  std::string p = env(variable);
  if (!p.empty()) return p;
  const std::string home = env("HOME");
  return home.empty() ? "" : home + "/.aws/" + name;
}

}  // namespace

std::string uri_encode(const std::string& s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool load_s3_config(S3Config* out, std::string* err) {
  S3Config c;
  c.profile = env("AWS_PROFILE");
  if (c.profile.empty()) c.profile = "default";
  const std::string creds_path = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const std::string config_path = home_file("AWS_CONFIG_FILE", "config");
  auto creds = creds_path.empty() ? std::map<std::string, std::string>{} : ini_section(creds_path, c.profile);
  auto config = config_path.empty() ? std::map<std::string, std::string>{}
                                    : ini_section(config_path, c.profile == "default" ? "default" : "profile " + c.profile);
  auto pick = [&](const char* variable, const char* key) {
    std::string v = env(variable);
    if (v.empty() && creds.count(key)) v = creds[key];
    if (v.empty() && config.count(key)) v = config[key];
    return v;
  };
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  if (!c.access_key.empty() || !c.secret_key.empty()) {
    c.session_token = env("AWS_SESSION_TOKEN");
    c.credentials_from = "environment";
  } else {
    for (auto* m : {&creds, &config}) {
      if (m->count("aws_access_key_id") && m->count("aws_secret_access_key")) {
        c.access_key = (*m)["aws_access_key_id"];
        c.secret_key = (*m)["aws_secret_access_key"];
        c.session_token = m->count("aws_session_token") ? (*m)["aws_session_token"] : "";
        c.credentials_from = m == &creds ? creds_path : config_path;
        break;
      }
    }
  }
  if (c.access_key.empty() || c.secret_key.empty()) {
    *err = "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in " +
           (creds_path.empty() ? std::string("~/.aws/credentials") : creds_path) + " (profile " + c.profile + ")";
    return false;
  }
  c.region = env("AWS_REGION");
  if (c.region.empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.region.empty() && config.count("region")) c.region = config["region"];
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = env("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = pick("AWS_ENDPOINT_URL", "endpoint_url");
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  if (!c.endpoint.empty() && c.endpoint.rfind("http://", 0) != 0 && c.endpoint.rfind("https://", 0) != 0) {
    *err = "the S3 endpoint '" + c.endpoint + "' must start with http:// or https://";
    return false;
  }
  // A custom endpoint (an S3-compatible store, a local gateway) is addressed path-style, since
  // its host names rarely resolve per bucket; AWS itself virtual-hosted style.
  c.path_style = !c.endpoint.empty();
  const std::string style = env("AWS_S3_ADDRESSING_STYLE");
  if (style == "path") c.path_style = true;
  if (style == "virtual") c.path_style = false;
  if (!style.empty() && style != "path" && style != "virtual" && style != "auto") {
    *err = "AWS_S3_ADDRESSING_STYLE='" + style + "' is not valid; use path, virtual or auto";
    return false;
  }
  *out = c;
  return true;
}

std::string s3_url(const S3Config& cfg, const std::string& bucket, const std::string& key, const std::string& query) {
  std::string url;
  const std::string path = key.empty() ? "" : uri_encode(key, true);
  if (cfg.path_style) {
    const std::string base = cfg.endpoint.empty() ? "https://s3." + cfg.region + ".amazonaws.com" : cfg.endpoint;
    url = base + "/" + bucket + (key.empty() ? "" : "/" + path);
  } else if (cfg.endpoint.empty()) {
    url = "https://" + bucket + ".s3." + cfg.region + ".amazonaws.com/" + path;
  } else {
    const size_t host_at = cfg.endpoint.find("://") + 3;
    url = cfg.endpoint.substr(0, host_at) + bucket + "." + cfg.endpoint.substr(host_at) + "/" + path;
  }
  if (key.empty() && cfg.path_style) url += "/";
  if (!query.empty()) url += "?" + query;
  return url;
}

}  // namespace uffdlazy::remote

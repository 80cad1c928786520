# Writes the configuration installed as /etc/veto/veto.yaml: conf/veto.yaml with the paths of
# an installed host. cmake -DIN=conf/veto.yaml -DOUT=FILE -DLISTS_DIR=DIR -DSTATE_DIR=DIR
#   -DLOG_DIR=DIR -P installed-config.cmake
# Every rewrite must happen exactly as planned: a changed conf/veto.yaml fails the build here
# instead of shipping a configuration that points into the source tree.
file(READ "${IN}" text)

function(rewrite regex replacement expected)
  # counted through a marker: matches holding ';' or brackets would upset a CMake list
  string(REGEX REPLACE "${regex}" "@MATCH@" marked "${text}")
  string(REGEX MATCHALL "@MATCH@" found "${marked}")
  list(LENGTH found n)
  if(NOT n EQUAL expected)
    message(FATAL_ERROR "${IN}: expected ${expected} match(es) of '${regex}', found ${n}")
  endif()
  string(REGEX REPLACE "${regex}" "${replacement}" out "${text}")
  set(text "${out}" PARENT_SCOPE)
endfunction()

# The port every DHCP client uses, on every address (IPv6 sockets are IPV6_V6ONLY, so both bind).
rewrite("\n  listen: [^\n]*" "\n  listen: [\"0.0.0.0:53\", \"[::]:53\"]" 1)
rewrite("\n  # The container image \\(docker/Dockerfile\\)[^\n]*" "" 1)
rewrite("files: \\[lists/" "files: [${LISTS_DIR}/" 6)
rewrite("\nstate_dir: \\.\\./var" "\nstate_dir: ${STATE_DIR}" 1)
rewrite("\n  file: \"-\"   [^\n]*" "\n  file: ${LOG_DIR}/queries.jsonl  # JSON lines (logrotate: /etc/logrotate.d/veto)" 1)

# The head of the file speaks of the source tree: say what this file is instead.
string(FIND "${text}" "\nserver:" start)
if(start LESS 0)
  message(FATAL_ERROR "${IN}: no 'server:' section")
endif()
string(SUBSTRING "${text}" ${start} -1 body)
set(head "# Veto: the configuration of this host (format v1), read by every veto command.
#
# Check it:   veto check
# Apply it:   systemctl reload veto      (or kill -HUP the daemon)
# Ask it:     veto explain --client 192.168.1.23 tracking.miui.com
#
# Generated from the source tree's conf/veto.yaml; every key is described in veto.yaml(5).
# The shipped lists are in ${LISTS_DIR}. Unknown keys are errors.
#
# Before pointing clients at this host, set upstream.servers to the resolvers Veto forwards to
# when /etc/resolv.conf names this host itself (a loop), and server.allow to your networks.
")
file(WRITE "${OUT}.tmp" "${head}${body}")
file(RENAME "${OUT}.tmp" "${OUT}")

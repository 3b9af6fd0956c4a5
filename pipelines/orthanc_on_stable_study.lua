-- Orthanc Lua example: when a study becomes stable, analyse it with netlm-imaging
-- and store the DICOM SR (TID 1500) and the derived SEG it references back into Orthanc.
--
-- Install: list this file in Orthanc's configuration ("LuaScripts": ["/etc/orthanc/orthanc_on_stable_study.lua"])
-- and set "StableAge" (seconds without new instances before a study counts as stable).
--
-- The callback never blocks Orthanc: it starts pacs_export_hook.py in the background and returns at once.
-- The hook calls back into this Orthanc over DICOMweb (retrieve, then store the SR and SEG), which
-- Orthanc could not answer while a callback that waits for the hook is still running.
--
-- Credentials: the hook reads NETLM_PACS_USER / NETLM_PACS_PASSWORD or NETLM_PACS_TOKEN from the
-- environment of the Orthanc service (e.g. a systemd drop-in with EnvironmentFile=/etc/netlm/pacs.env,
-- chmod 600), never from this script.
--
-- Paths: set these environment variables of the Orthanc service, or edit the defaults below.
local PYTHON = os.getenv('NETLM_PYTHON') or '/usr/bin/python3'
local HOOK = os.getenv('NETLM_HOOK') or '/opt/netlm-imaging/pipelines/pacs_export_hook.py'
local RESULTS = os.getenv('NETLM_RESULTS') or '/var/lib/netlm/results'
local DICOMWEB = os.getenv('NETLM_DICOMWEB') or 'http://127.0.0.1:8042/dicom-web'

-- Single-quote a word for /bin/sh.
local function Quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

-- netlm-imaging's own objects carry Manufacturer "netlm-imaging" (the creator identification).
local function IsOurs(series)
  return series['MainDicomTags']['Manufacturer'] == 'netlm-imaging'
end

-- Analyse a study only if it holds something else than our own outputs, and only once:
-- after the hook ran, the study holds our SR (re-running would store the same objects anyway).
local function NeedsAnalysis(studyId)
  local series = ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))
  local others = false
  for _, s in ipairs(series) do
    if IsOurs(s) then
      if s['MainDicomTags']['Modality'] == 'SR' then
        return false
      end
    else
      others = true
    end
  end
  return others
end

function OnStableStudy(studyId, tags, metadata)
  if not NeedsAnalysis(studyId) then
    return
  end
  local uid = tags['StudyInstanceUID']
  -- UIDs are digits and dots only; refuse anything else before building the command line
  if uid == nil or string.match(uid, '^[0-9][0-9.]*$') == nil then
    print('netlm: skipping study ' .. studyId .. ' with an unexpected StudyInstanceUID')
    return
  end
  local cmd = Quote(PYTHON) .. ' ' .. Quote(HOOK) .. ' --study-uid ' .. uid .. ' --url ' .. Quote(DICOMWEB) ..
              ' --out ' .. Quote(RESULTS) .. ' --push'
  local log = Quote(RESULTS .. '/netlm-hook.log')
  -- '&': the shell returns at once and the hook runs on its own; its output goes to the log
  os.execute('mkdir -p ' .. Quote(RESULTS) .. ' && (' .. cmd .. ' >> ' .. log .. ' 2>&1 &)')
  print('netlm: analysing study ' .. uid .. ' in the background; see ' .. RESULTS .. '/netlm-hook.log')
end

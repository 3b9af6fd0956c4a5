-- Orthanc Lua example: when a study becomes stable, analyse it with netlm-imaging
-- and store the DICOM SR (TID 1500) back into Orthanc.
--
-- Install: put this file in Orthanc's configuration ("LuaScripts": ["/etc/orthanc/orthanc_on_stable_study.lua"]),
-- and set "StableAge" (seconds without new instances before a study counts as stable).
-- The hook gets its credentials from the environment of the Orthanc service
-- (NETLM_PACS_USER / NETLM_PACS_PASSWORD or NETLM_PACS_TOKEN), e.g. a systemd drop-in
-- with EnvironmentFile=/etc/netlm/pacs.env (chmod 600), never from this script.
--
-- Adjust these three paths to your installation.
local PYTHON = "/usr/bin/python3"
local HOOK = "/opt/netlm-imaging/pipelines/pacs_export_hook.py"
local RESULTS = "/var/lib/netlm/results"
local DICOMWEB = "http://127.0.0.1:8042/dicom-web"

-- Studies that only contain our own outputs (SR/SEG series) must not trigger a new analysis.
local function OnlyDerivedObjects(studyId)
  local series = ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))
  for _, s in ipairs(series) do
    local modality = s['MainDicomTags']['Modality']
    if modality ~= 'SR' and modality ~= 'SEG' then
      return false
    end
  end
  return true
end

-- A study is analysed once: after the hook ran, the SR it pushed is in the study.
local function AlreadyAnalysed(studyId)
  local series = ParseJson(RestApiGet('/studies/' .. studyId .. '/series'))
  for _, s in ipairs(series) do
    if s['MainDicomTags']['Modality'] == 'SR' and s['MainDicomTags']['SeriesDescription'] == 'netlm tumour burden (TID 1500)' then
      return true
    end
  end
  return false
end

function OnStableStudy(studyId, tags, metadata)
  if OnlyDerivedObjects(studyId) or AlreadyAnalysed(studyId) then
    return
  end
  local uid = tags['StudyInstanceUID']
  -- UIDs are digits and dots only; refuse anything else before building the command line
  if uid == nil or string.match(uid, '^[0-9.]+$') == nil then
    print('netlm: skipping study ' .. studyId .. ' with an unexpected StudyInstanceUID')
    return
  end
  local cmd = PYTHON .. ' ' .. HOOK .. ' --study-uid ' .. uid .. ' --url ' .. DICOMWEB ..
              ' --out ' .. RESULTS .. ' --push'
  -- os.execute blocks this Lua callback; for long analyses, queue the UID instead (e.g. write it to a spool folder)
  local ok = os.execute(cmd)
  if not ok then
    print('netlm: analysis of study ' .. uid .. ' failed; see the Orthanc log and ' .. RESULTS)
  end
end

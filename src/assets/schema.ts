import { z } from 'zod';
import { ASSET_TYPES } from './names';

/**
 * asset.yaml, validated with zod. Per-type `spec` fields follow the Azure ML v2 shapes where they fit
 * (docs/assets.md). Unknown keys in `spec` are kept (teams add their own), unknown top-level keys are not.
 */
const io = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]));

export const SourceObject = z.object({
  key: z.string().min(1),
  size: z.number().int().nonnegative(),
  etag: z.string().optional(),
  version: z.string().optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

export const SPEC_SCHEMAS = {
  dataset: z
    .object({
      type: z.enum(['uri_file', 'uri_folder', 'mltable']).default('uri_folder'),
      path: z.string().default('.'),
      source: z
        .object({
          uri: z.string().min(1),
          objects: z.array(SourceObject),
          hashed: z.boolean().default(false),
        })
        .optional(),
    })
    .passthrough(),
  model: z
    .object({
      // Azure ML's three model types. onnx_model and pytorch_model were accepted by earlier versions:
      // they still read (and export as custom_model); new registrations use the three.
      type: z.enum(['custom_model', 'mlflow_model', 'triton_model', 'onnx_model', 'pytorch_model']).default('custom_model'),
      path: z.string().default('.'),
      flavors: z.record(z.string(), z.unknown()).optional(),
      environment: z.string().optional(),
    })
    .passthrough(),
  environment: z
    .object({
      image: z.string().optional(),
      conda_file: z.string().optional(),
      build: z.object({ path: z.string(), dockerfile_path: z.string().optional() }).passthrough().optional(),
      os_type: z.enum(['linux', 'windows']).optional(),
      inference_config: z.record(z.string(), z.unknown()).optional(),
    })
    .passthrough(),
  component: z
    .object({
      command: z.string().optional(),
      inputs: io.optional(),
      outputs: io.optional(),
      environment: z.string().optional(),
      code: z.string().optional(),
    })
    .passthrough(),
  // An endpoint with its deployment (Azure ML keeps them as two documents: export writes both).
  endpoint: z
    .object({
      kind: z.enum(['online', 'batch']).default('online'),
      model: z.string().optional(),
      environment: z.string().optional(),
      auth_mode: z.enum(['key', 'aml_token', 'aad_token']).optional(),
      deployment: z.string().regex(/^[a-z][a-z0-9-]{2,31}$/i).optional(),
      code_configuration: z.object({ code: z.string(), scoring_script: z.string() }).strict().optional(),
      instance_type: z.string().optional(),
      instance_count: z.number().int().positive().optional(),
      compute: z.string().optional(),
      settings: z
        .object({
          instance_count: z.number().int().positive().optional(),
          max_concurrency_per_instance: z.number().int().positive().optional(),
          mini_batch_size: z.number().int().positive().optional(),
          output_action: z.enum(['append_row', 'summary_only']).optional(),
          output_file_name: z.string().optional(),
          retry_settings: z.object({ max_retries: z.number().int().nonnegative().optional(), timeout: z.number().int().positive().optional() }).strict().optional(),
          error_threshold: z.number().int().optional(),
          logging_level: z.enum(['debug', 'info', 'warning', 'error', 'critical']).optional(),
        })
        .passthrough()
        .optional(),
    })
    .passthrough(),
  experiment: z
    .object({
      command: z.string().optional(),
      inputs: io.optional(),
      outputs: io.optional(),
      params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      environment: z.string().optional(),
      compute: z.string().optional(),
    })
    .passthrough(),
} as const;

export const DigestFile = z.object({ path: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });

export const LineageInput = z.object({
  ref: z.string(),
  type: z.enum(ASSET_TYPES),
  name: z.string(),
  version: z.string(),
  digest: z.string(),
  repo: z.string().optional(),
});

export const AssetDoc = z
  .object({
    type: z.enum(ASSET_TYPES),
    name: z.string(),
    version: z.string(),
    description: z.string().default(''),
    tags: z.record(z.string(), z.string()).default({}),
    created: z.object({ time: z.string(), author: z.string() }),
    spec: z.record(z.string(), z.unknown()).default({}),
    digest: z.object({ algorithm: z.literal('sha256'), value: z.string().regex(/^[0-9a-f]{64}$/), files: z.array(DigestFile) }),
    lineage: z
      .object({
        commit: z.string().nullable(),
        repo: z.string().optional(),
        inputs: z.array(LineageInput).default([]),
        run: z.object({ id: z.string(), experiment: z.string(), commit: z.string() }).optional(),
      })
      .default({ commit: null, inputs: [] }),
  })
  .strict();

export type AssetDocument = z.infer<typeof AssetDoc>;
export type DigestEntry = z.infer<typeof DigestFile>;
export type LineageEntry = z.infer<typeof LineageInput>;
export type SourceObjectEntry = z.infer<typeof SourceObject>;
